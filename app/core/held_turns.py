"""Workflow turns this worker was handed that the runtime never applied: a wedge nobody calls.

daprd 1.18.1 can hand a workflow's turn to the worker and never apply the answer (the sidecar
watchdog's module says how, app/core/sidecar_watchdog.py). The watchdog sees such a wedge from
calls that time out; a workflow that nobody calls (it was between two steps, and status reads go
to the store) gives it none, and used to wait for a person (app/services/stuck_tickets.py).

The worker sees it itself. Each work item opens with the turn's own start event
(`workflowStarted`, stamped by the sidecar as it hands the turn out), which the runtime adds to
the instance's history once it applies the turn. `HeldTurns` records the newest turn of each
instance as the work-item stream passes (a gRPC interceptor on the worker's channel; it changes
nothing). An instance whose last change (`last_updated_at`, the time of its history's newest
event, by the same clock) is at or after that start has applied the turn. One whose last change
is older has not, or applied it without adding a step (its newest event is then the one it
applied, older than the start): once `after_s` has passed, `WedgedTurnCheck`, called by the read
model's sweep for each running ticket, reads the instance's history for the turn's start event.
Not there: the sidecar that handed the turn (this worker's own) holds the workflow's actor on it,
and the watchdog restarts it. Only the replica whose worker was handed the turn acts.
The worker queues the turns it is handed (the SDK reads its stream ahead of its threads), so a
turn it has not answered while many others also wait for it is its own backlog, not a wedge.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timezone

import grpc

import dapr.ext.workflow._durabletask.internal.protos as pb
from google.protobuf.timestamp_pb2 import Timestamp

from app.core.sidecar_watchdog import SidecarWatchdog
from app.readmodel.runtime_watch import COMPLETE_ORCHESTRATOR_TASK, GET_WORK_ITEMS, ObservedStream
from app.services.operations import parse_time
from app.services.workflow_gateway import Instance, WorkflowGateway

logger = logging.getLogger(__name__)

# Unanswered turns ahead of a held one that say the worker is busy rather than the turn lost.
BUSY_WORKER = 8
# Instances remembered at once (the newest turn of each); older ones are forgotten first.
MAX_TRACKED = 10_000


def turn_started(work_item: pb.WorkItem) -> tuple[str, Timestamp] | None:
    """(instance id, the turn's start as the sidecar stamped it), for a workflow's turn."""
    if not work_item.HasField("workflowRequest"):
        return None
    request = work_item.workflowRequest
    for event in request.newEvents:
        if event.HasField("workflowStarted"):
            return request.instanceId, event.timestamp
    return None


class HeldTurns(grpc.UnaryStreamClientInterceptor, grpc.UnaryUnaryClientInterceptor):
    """The newest turn handed to this worker for each instance: its start event's time, when it
    was handed, and whether the worker has answered it yet."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._turns: OrderedDict[str, tuple[Timestamp, float]] = OrderedDict()  # start, handed at
        self._unanswered: set[str] = set()

    def intercept_unary_stream(self, continuation, client_call_details, request):
        stream = continuation(client_call_details, request)
        return ObservedStream(stream, self._see) if client_call_details.method == GET_WORK_ITEMS else stream

    def _see(self, item: pb.WorkItem) -> None:
        if (turn := turn_started(item)) is not None:
            self.handed(*turn)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        if client_call_details.method == COMPLETE_ORCHESTRATOR_TASK and isinstance(request, pb.WorkflowResponse):
            self.answered(request.instanceId)
        return continuation(client_call_details, request)

    def handed(self, instance_id: str, started: Timestamp) -> None:
        with self._lock:
            self._turns.pop(instance_id, None)
            self._turns[instance_id] = (started, self._clock())
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

    def held_for(self, instance_id: str, last_updated_at: str | None) -> tuple[Timestamp, float] | None:
        """(the turn's start, seconds since it was handed) for a turn of the instance that its
        last change does not show applied; None when there is none."""
        with self._lock:
            turn = self._turns.get(instance_id)
        if turn is None or not last_updated_at:
            return None
        started, handed_at = turn
        # To the microsecond, as the SDK gives the last change.
        if parse_time(last_updated_at) >= started.ToDatetime(tzinfo=timezone.utc):
            self.forget(instance_id, started)
            return None
        return started, self._clock() - handed_at

    def forget(self, instance_id: str, started: Timestamp) -> None:
        """The turn is applied: forgotten, unless a newer one came meanwhile."""
        with self._lock:
            if (turn := self._turns.get(instance_id)) is not None and turn[0] == started:
                del self._turns[instance_id]
                self._unanswered.discard(instance_id)


class WedgedTurnCheck:
    """For the sweep's running tickets: tells the watchdog of a turn held past its `after_s`
    (its start event absent from the instance's history), at most `max_restarts` times for one
    instance. A turn that restarts do not free (a workflow whose own code hangs) is then left to
    the stuck-ticket escalation, not restarted over forever."""

    def __init__(self, turns: HeldTurns, watchdog: SidecarWatchdog, workflows: WorkflowGateway,
                 max_restarts: int = 2):
        self.turns, self.watchdog, self.workflows, self.max_restarts = turns, watchdog, workflows, max_restarts
        self._restarts: OrderedDict[str, int] = OrderedDict()

    def __call__(self, row: dict, instance: Instance) -> bool:
        instance_id = instance.instance_id
        held = self.turns.held_for(instance_id, instance.last_updated_at)
        if held is None or held[1] < self.watchdog.after_s:
            return False
        started, held_s = held
        if self.turns.queued_behind(instance_id) >= BUSY_WORKER:
            return False
        if any(event.HasField("workflowStarted") and event.timestamp == started
               for event in reversed(self.workflows.history(instance_id))):
            self.turns.forget(instance_id, started)  # applied, without a step of its own
            return False
        restarts = self._restarts.get(instance_id, 0)
        if restarts >= self.max_restarts:
            return False
        if not self.watchdog.turn_held(instance_id, held_s):
            return False
        self._restarts[instance_id] = restarts + 1
        while len(self._restarts) > MAX_TRACKED:
            self._restarts.popitem(last=False)
        if restarts + 1 == self.max_restarts:
            logger.warning("restarted the sidecar for this workflow's held turn as often as allowed; "
                           "if it stays wedged, the stuck-ticket escalation hands it to a person",
                           extra={"ticket_id": instance_id, "restarts": restarts + 1})
        return True
