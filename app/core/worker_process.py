"""The workflow worker's process (app/workflows/worker.py), started by the API's process and
watched by it: started again when it exits on its own, stopped with the API, and killed by the
kernel when the API's process dies without stopping it (a crash must not leave a second worker
on the sidecar when the API is started again)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

logger = logging.getLogger(__name__)

PARENT_PID_ENV = "WORKER_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# A worker that ran this long before it exited is started again after FIRST_RESTART_S; one that
# keeps exiting sooner waits twice as long each time (from 1 s), up to the cap.
STEADY_RUN_S = 60.0
FIRST_RESTART_S = 0.5
MAX_BACKOFF_S = 30.0


def die_with_parent() -> None:
    """In the worker: the kernel kills it when the thread that started it ends (the API's
    process gone); it exits at once if that happened before this call. Linux only."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the API's shutdown still stops it
        return
    expected = os.environ.get(PARENT_PID_ENV)
    if expected and os.getppid() != int(expected):
        sys.exit("the API's process that started this worker is gone")


class WorkerProcess:
    def __init__(self, command: list[str] | None = None, stop_timeout: float = 15.0):
        self.command = command or [sys.executable, "-m", "app.workflows.worker"]
        self.stop_timeout = stop_timeout
        self.restarts = 0
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # The thread that starts the worker also waits for it: the worker's death signal is tied
        # to this thread, which lives exactly as long as the worker runs.
        self._thread = threading.Thread(target=self._supervise, name="worker-process", daemon=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
        return subprocess.Popen(self.command, env=env)

    def _supervise(self) -> None:
        delay = 0.0
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = process = self._spawn()
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            steady = time.monotonic() - started > STEADY_RUN_S
            delay = FIRST_RESTART_S if steady else min(max(delay * 2, 1.0), MAX_BACKOFF_S)
            self.restarts += 1
            logger.error("the workflow worker exited; starting it again",
                         extra={"exit_code": code, "pid": process.pid, "restart_in_s": delay,
                                "restarts": self.restarts})
            if self._stopping.wait(delay):
                return

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `stop_timeout`."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                logger.warning("the workflow worker did not stop in time; killing it", extra={"pid": process.pid})
                process.kill()
                process.wait()
        self._thread.join(timeout=5)
