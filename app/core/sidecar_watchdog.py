"""Restarts this replica's sidecar when the runtime has wedged a workflow on it.

daprd 1.18.1 can hand a workflow's turn to the worker and never get the answer back (seen after
a placement node was killed while the actor moved between replicas: docs/benchmarks.md, "Runtime
problems found"). The workflow's actor then waits on that turn and holds its lock, so every later
call that goes through that actor (a start, a decision raised, a cancel) runs into its deadline,
its own timers never fire, and nothing heals until that sidecar restarts: its metadata and health
look fine the whole time, and status reads (which read the store) still answer.

The watchdog sees that from the calls this process makes: the same instance past its deadline
`min_timeouts` times over at least `after_s` seconds, with no answer for it in between. When the
sidecar itself reports its control plane connected (placement, scheduler) and a worker attached,
the control plane is not the cause, so it asks the sidecar to shut down (`POST /v1.0/shutdown`);
the process manager (supervisord in the replicated profile, the kubelet on Kubernetes) starts it
again and the runtime hands the turn out anew. At most once per `cooldown_s`. Off unless
SIDECAR_WATCHDOG is set: only where something restarts the sidecar.

Every replica's calls for a wedged instance time out, whichever replica hosts it, so each
restarts its own sidecar in turn: the host among them. A restart costs a few seconds of 503s on
that replica (the load balancer takes it out meanwhile); a wedge costs the instance forever.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import httpx

from app.core.sidecar_http import connected_workflow_workers, sidecar_metadata, sidecar_request

logger = logging.getLogger(__name__)

# Instances tracked at once: a sidecar that times out on everything is a control-plane outage,
# which the health check below recognises; the bound only keeps memory flat meanwhile.
MAX_TRACKED = 1000


def control_plane_problem(metadata: dict) -> str | None:
    """Why the sidecar's own view says a call may hang (None: placement and scheduler connected
    and a workflow worker attached, so a hang is not theirs)."""
    actors = metadata.get("actorRuntime") or {}
    if actors.get("runtimeStatus") != "RUNNING" or not actors.get("hostReady"):
        return f"actor runtime {actors.get('runtimeStatus')}, host ready {actors.get('hostReady')}"
    if actors.get("placement") != "placement: connected":
        return f"placement: {actors.get('placement')}"
    if not (metadata.get("scheduler") or {}).get("connected_addresses"):
        return "no scheduler connected"
    if connected_workflow_workers(metadata) == 0:
        return "no workflow worker connected"
    return None


def sidecar_control_plane_problem() -> str | None:
    try:
        return control_plane_problem(sidecar_metadata())
    except httpx.HTTPError as error:
        return f"metadata unreadable: {type(error).__name__}"


def shut_down_sidecar() -> None:
    sidecar_request("POST", "/v1.0/shutdown").raise_for_status()


class SidecarWatchdog:
    def __init__(self, after_s: float = 60.0, min_timeouts: int = 3, cooldown_s: float = 300.0,
                 problem: Callable[[], str | None] = sidecar_control_plane_problem,
                 restart: Callable[[], None] = shut_down_sidecar, clock: Callable[[], float] = time.monotonic,
                 claim: Callable[[float], bool] | None = None):
        self.after_s, self.min_timeouts, self.cooldown_s = after_s, min_timeouts, cooldown_s
        self._problem, self._restart, self._clock = problem, restart, clock
        # Shared by this sidecar's processes (the API's and the worker's watchdogs): one restart
        # per cooldown whichever of them sees the wedge first.
        self._claim = claim or RestartClaim()
        self._lock = threading.Lock()
        self._timeouts: OrderedDict[str, list[float]] = OrderedDict()  # instance -> times, oldest first
        self._restarted_at: float | None = None
        self.restarts = 0

    def answered(self, instance_id: str) -> None:
        with self._lock:
            self._timeouts.pop(instance_id, None)

    def timed_out(self, instance_id: str) -> None:
        now = self._clock()
        with self._lock:
            times = self._timeouts.pop(instance_id, [])
            times.append(now)
            self._timeouts[instance_id] = times
            while len(self._timeouts) > MAX_TRACKED:
                self._timeouts.popitem(last=False)
            if len(times) < self.min_timeouts or now - times[0] < self.after_s:
                return
            wedged = [i for i, t in self._timeouts.items()
                      if len(t) >= self.min_timeouts and now - t[0] >= self.after_s]
        self._restart_for(wedged, "the runtime has wedged workflows on this replica's sidecar (their calls time "
                                  "out while its control plane is connected): restarting it")

    def turn_held(self, instance_id: str, held_s: float) -> bool:
        """The worker was handed a turn of the instance `held_s` ago that the runtime has not
        applied (app/core/held_turns.py). True when the sidecar was asked to restart now."""
        return self._restart_for([instance_id], f"the runtime has not applied a workflow turn it handed this "
                                                f"replica's worker {round(held_s)} s ago: restarting it")

    def _restart_for(self, wedged: list[str], message: str) -> bool:
        now = self._clock()
        with self._lock:
            if self._restarted_at is not None and now - self._restarted_at < self.cooldown_s:
                return False
            # Claimed before the checks (which call the sidecar): one restart per wedge, whichever
            # thread saw it first.
            self._restarted_at = now
        problem = self._problem()
        if problem is not None:
            with self._lock:
                self._restarted_at = None
            logger.warning("a workflow is wedged, and the sidecar says why; not restarting it",
                           extra={"instances": wedged[:10], "problem": problem})
            return False
        if not self._claim(self.cooldown_s):
            logger.info("a workflow is wedged; another process of this replica restarted the sidecar lately",
                        extra={"instances": wedged[:10]})
            return False
        logger.error(message, extra={"instances": wedged[:10]})
        try:
            self._restart()
        except httpx.HTTPError as error:
            logger.error("asking the sidecar to shut down failed", extra={"error": repr(error)})
            return False
        with self._lock:
            self.restarts += 1
            for instance_id in wedged:
                self._timeouts.pop(instance_id, None)
        return True


class RestartClaim:
    """One restart of a sidecar per cooldown across the processes that share it (the API's and
    the worker's, in one container): a file named after the sidecar's port, whose time says when
    the last restart was asked for."""

    def __init__(self, path: Path | None = None):
        port = os.environ.get("DAPR_HTTP_PORT", "3500")
        self.path = path or Path(tempfile.gettempdir()) / f"support-sidecar-{port}-restart"

    def __call__(self, cooldown_s: float) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError:
            return True  # no shared place: each process keeps its own cooldown
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = float(os.read(fd, 32) or 0)
            now = time.time()
            if now - last < cooldown_s:
                return False
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, repr(now).encode())
            return True
        except ValueError:
            return True
        finally:
            os.close(fd)
