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

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

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
                 restart: Callable[[], None] = shut_down_sidecar, clock: Callable[[], float] = time.monotonic):
        self.after_s, self.min_timeouts, self.cooldown_s = after_s, min_timeouts, cooldown_s
        self._problem, self._restart, self._clock = problem, restart, clock
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
            if self._restarted_at is not None and now - self._restarted_at < self.cooldown_s:
                return
            wedged = [i for i, t in self._timeouts.items()
                      if len(t) >= self.min_timeouts and now - t[0] >= self.after_s]
            # Claimed before the checks (which call the sidecar): one restart per wedge, whichever
            # thread saw it first.
            self._restarted_at = now
        problem = self._problem()
        if problem is not None:
            with self._lock:
                self._restarted_at = None
            logger.warning("calls for a workflow keep timing out, and the sidecar says why; not restarting it",
                           extra={"instances": wedged[:10], "problem": problem})
            return
        logger.error("the runtime has wedged workflows on this replica's sidecar (their calls time out while "
                     "its control plane is connected): restarting it", extra={"instances": wedged[:10]})
        try:
            self._restart()
        except httpx.HTTPError as error:
            logger.error("asking the sidecar to shut down failed", extra={"error": repr(error)})
            return
        with self._lock:
            self.restarts += 1
            for instance_id in wedged:
                self._timeouts.pop(instance_id, None)
