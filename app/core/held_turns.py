"""Workflow turns this worker was handed that the runtime never applied: a wedge nobody calls.

daprd 1.18.1 can hand a workflow's turn to the worker and never apply the answer (the sidecar
watchdog's module says how, app/core/sidecar_watchdog.py). The watchdog sees such a wedge from
calls that time out; a workflow that nobody calls (it was between two steps, and status reads go
to the store) gives it none, and used to wait for a person (app/services/stuck_tickets.py).

The worker sees it itself. Each work item carries the events the turn applies (an activity's
result, a timer fired, an event raised), stamped by the sidecar's clock. Once the runtime has
applied a turn, the instance's history holds them, so its last change (`last_updated_at`, the
timestamp of its history's last event, by the same clock) is at least the newest of them. An
instance whose last change is still older than the events of a turn handed to this worker
`after_s` ago has not applied that turn: the sidecar that handed it (this worker's own) holds the
workflow's actor on it. `HeldTurns` records the newest turn of each instance as the work-item
stream passes (a gRPC interceptor on the worker's channel; it changes nothing), and
`WedgedTurnCheck`, called by the read model's sweep for each running ticket, tells the
watchdog, which restarts the sidecar. Only the replica whose worker was handed the turn acts.
The worker queues the turns it is handed (the SDK reads its stream ahead of its threads), so a
turn it has not answered while many others also wait for it is its own backlog, not a wedge.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone

import grpc

import dapr.ext.workflow._durabletask.internal.protos as pb

from app.core.sidecar_watchdog import SidecarWatchdog
from app.services.workflow_gateway import Instance

logger = logging.getLogger(__name__)

GET_WORK_ITEMS = "/TaskHubSidecarService/GetWorkItems"
COMPLETE_ORCHESTRATOR_TASK = "/TaskHubSidecarService/CompleteOrchestratorTask"
# Unanswered turns ahead of a held one that say the worker is busy rather than the turn lost.
BUSY_WORKER = 8
# Instances remembered at once (the newest turn of each); older ones are forgotten first.
MAX_TRACKED = 10_000


def turn_events_at(work_item: pb.WorkItem) -> tuple[str, datetime] | None:
    """(instance id, the time of the newest event the turn applies), for a workflow's turn."""
    if not work_item.HasField("workflowRequest"):
        return None
    request = work_item.workflowRequest
    stamps = [event.timestamp.ToDatetime(tzinfo=timezone.utc) for event in request.newEvents
              if event.HasField("timestamp") and not event.HasField("workflowStarted")]
    return (request.instanceId, max(stamps)) if stamps else None


class _ObservedStream:
    def __init__(self, stream, turns: "HeldTurns"):
        self._stream, self._turns = stream, turns

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._stream)
        if (turn := turn_events_at(item)) is not None:
            self._turns.handed(*turn)
        return item

    def __getattr__(self, name):
        return getattr(self._stream, name)


class HeldTurns(grpc.UnaryStreamClientInterceptor, grpc.UnaryUnaryClientInterceptor):
    """The newest turn handed to this worker for each instance: the time of its events, when it
    was handed, and whether the worker has answered it yet."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._turns: OrderedDict[str, tuple[datetime, float]] = OrderedDict()
        self._unanswered: set[str] = set()

    def intercept_unary_stream(self, continuation, client_call_details, request):
        stream = continuation(client_call_details, request)
        return _ObservedStream(stream, self) if client_call_details.method == GET_WORK_ITEMS else stream

    def intercept_unary_unary(self, continuation, client_call_details, request):
        if client_call_details.method == COMPLETE_ORCHESTRATOR_TASK and isinstance(request, pb.WorkflowResponse):
            self.answered(request.instanceId)
        return continuation(client_call_details, request)

    def handed(self, instance_id: str, events_at: datetime) -> None:
        with self._lock:
            self._turns.pop(instance_id, None)
            self._turns[instance_id] = (events_at, self._clock())
            self._unanswered.add(instance_id)
            while len(self._turns) > MAX_TRACKED:
                self._unanswered.discard(self._turns.popitem(last=False)[0])

    def answered(self, instance_id: str) -> None:
        with self._lock:
            self._unanswered.discard(instance_id)

    def queued_behind(self, instance_id: str) -> int:
        """How many other turns this worker has been handed and not answered, when the
        instance's own turn is one of them (0 otherwise): a worker that is only busy holds a
        turn in its queue for a while, which is no wedge of the runtime's."""
        with self._lock:
            return len(self._unanswered) - 1 if instance_id in self._unanswered else 0

    def held_for(self, instance_id: str, last_updated_at: str | None) -> float | None:
        """Seconds since this worker was handed a turn of the instance that its history does not
        hold yet (its last change older than the turn's events); None when there is none."""
        with self._lock:
            turn = self._turns.get(instance_id)
        if turn is None or not last_updated_at:
            return None
        events_at, handed_at = turn
        last_updated = datetime.fromisoformat(last_updated_at)
        if last_updated.tzinfo is None:
            last_updated = last_updated.replace(tzinfo=timezone.utc)
        if last_updated >= events_at:
            with self._lock:  # applied: forgotten, unless a newer turn came meanwhile
                if self._turns.get(instance_id) == turn:
                    del self._turns[instance_id]
                    self._unanswered.discard(instance_id)
            return None
        return self._clock() - handed_at


class WedgedTurnCheck:
    """For the sweep's running tickets: tells the watchdog of a turn held past its `after_s`, at
    most `max_restarts` times for one instance. A turn that restarts do not free (a workflow
    whose own code hangs) is then left to the stuck-ticket escalation, not restarted over forever."""

    def __init__(self, turns: HeldTurns, watchdog: SidecarWatchdog, max_restarts: int = 2):
        self.turns, self.watchdog, self.max_restarts = turns, watchdog, max_restarts
        self._restarts: OrderedDict[str, int] = OrderedDict()

    def __call__(self, row: dict, instance: Instance) -> bool:
        held = self.turns.held_for(instance.instance_id, instance.last_updated_at)
        if held is None or held < self.watchdog.after_s:
            return False
        if self.turns.queued_behind(instance.instance_id) >= BUSY_WORKER:
            return False
        restarts = self._restarts.get(instance.instance_id, 0)
        if restarts >= self.max_restarts:
            return False
        if not self.watchdog.turn_held(instance.instance_id, held):
            return False
        self._restarts[instance.instance_id] = restarts + 1
        while len(self._restarts) > MAX_TRACKED:
            self._restarts.popitem(last=False)
        if restarts + 1 == self.max_restarts:
            logger.warning("restarted the sidecar for this workflow's held turn as often as allowed; "
                           "if it stays wedged, the stuck-ticket escalation hands it to a person",
                           extra={"ticket_id": instance.instance_id, "restarts": restarts + 1})
        return True
