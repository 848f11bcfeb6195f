"""The worker process's supervision (app/core/worker_process.py), with small stand-in commands:
a worker that exits is started again, stop() ends a running one, and a worker whose parent dies
is killed by the kernel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from app.core import worker_process
from app.core.worker_process import WorkerProcess


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_worker_that_exits_is_started_again_with_a_growing_delay(monkeypatch):
    monkeypatch.setattr(worker_process, "MAX_BACKOFF_S", 0.2)
    worker = WorkerProcess(command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    worker.start()
    try:
        wait_for(lambda: worker.restarts >= 3)
    finally:
        worker.stop()
    stopped_at = worker.restarts
    time.sleep(0.5)
    assert worker.restarts == stopped_at  # stop() ends the supervision too


def test_stop_ends_a_running_worker_and_kills_one_that_ignores_sigterm(tmp_path):
    for ignores in (False, True):
        ready = tmp_path / f"ready-{ignores}"
        script = textwrap.dedent(f"""
            import pathlib, signal, time
            if {ignores}:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(60)
        """)
        worker = WorkerProcess(command=[sys.executable, "-c", script], stop_timeout=0.5)
        worker.start()
        wait_for(ready.exists)
        pid = worker.pid
        started = time.monotonic()
        worker.stop()
        assert time.monotonic() - started < 5
        assert worker.restarts == 0
        assert not _alive(pid)


def test_a_worker_dies_with_the_process_that_started_it(tmp_path):
    """SIGKILL to the API's process leaves no worker behind (PR_SET_PDEATHSIG)."""
    pid_file = tmp_path / "worker.pid"
    worker_script = ("import os, pathlib, time; from app.core.worker_process import die_with_parent; "
                     f"die_with_parent(); pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(60)")
    parent_script = textwrap.dedent(f"""
        import sys, time
        from app.core.worker_process import WorkerProcess
        WorkerProcess(command=[sys.executable, "-c", {worker_script!r}]).start()
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_script], env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        worker_pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
        assert _alive(worker_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_for(lambda: not _alive(worker_pid), timeout=5)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
