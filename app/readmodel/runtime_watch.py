"""Which workflows the runtime changed without their own code deciding it, noticed as it happens.

An operator's `dapr workflow terminate`, `suspend` or `resume` goes to the sidecar, not to the
API, and the ticket workflow runs no code of its own for it, so it cannot record it. The runtime
still hands the instance to this app's worker to apply the change: the work item carries an
`executionTerminated`, `executionSuspended` or `executionResumed` event. A workflow whose own
code fails (FAILED) ends in the worker's answer (`CompleteOrchestratorTask`). A gRPC client
interceptor on the worker's channel reads both, changes nothing in them, and names the instance
to the read model's sweep, which looks it up on its next turns instead of waiting for its place
among every waiting row (benchmarks/view_lag.py). Purges reach no worker: the sweep and the
next list page that shows the row still find those.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc

# The messages the SDK's worker receives and sends; the SDK has no public name for them.
import dapr.ext.workflow._durabletask.internal.protos as pb

GET_WORK_ITEMS = "/TaskHubSidecarService/GetWorkItems"
COMPLETE_ORCHESTRATOR_TASK = "/TaskHubSidecarService/CompleteOrchestratorTask"
# Events the runtime adds to a workflow on an operator's say-so.
OPERATOR_EVENTS = ("executionTerminated", "executionSuspended", "executionResumed")
# The runtime commits the change after the worker answers: a lookup on the sweep's next turn can
# still read the state before it, so a noticed instance is looked up on this many turns.
LOOKUPS_PER_NOTICE = 3


def changed_by_an_operator(work_item: pb.WorkItem) -> str | None:
    """The instance a work item asks the worker to terminate, suspend or resume, else None."""
    if not work_item.HasField("workflowRequest"):
        return None
    request = work_item.workflowRequest
    if any(event.HasField(kind) for event in request.newEvents for kind in OPERATOR_EVENTS):
        return request.instanceId
    return None


def ended_by_failure(response: pb.WorkflowResponse) -> bool:
    """True for a worker answer that ends the instance other than by completing (FAILED)."""
    return any(action.HasField("completeWorkflow")
               and action.completeWorkflow.workflowStatus != pb.ORCHESTRATION_STATUS_COMPLETED
               for action in response.actions)


class ObservedStream:
    """The work-item stream, each item shown to `see` before the worker gets it (unchanged)."""

    def __init__(self, stream, see: Callable[[pb.WorkItem], None]):
        self._stream, self._see = stream, see

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._stream)
        self._see(item)
        return item

    def __getattr__(self, name):  # cancel(), code(), ... of the underlying call
        return getattr(self._stream, name)


class RuntimeChangeWatch(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Observes the worker's work items and answers (never alters them) and keeps the instances
    to look up."""

    def __init__(self, lookups: int = LOOKUPS_PER_NOTICE):
        self.lookups = lookups
        self._due: dict[str, int] = {}
        self._lock = threading.Lock()

    def intercept_unary_stream(self, continuation, client_call_details, request):
        stream = continuation(client_call_details, request)
        return ObservedStream(stream, self._see) if client_call_details.method == GET_WORK_ITEMS else stream

    def _see(self, item: pb.WorkItem) -> None:
        if (instance_id := changed_by_an_operator(item)) is not None:
            self.notice(instance_id)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        if (client_call_details.method == COMPLETE_ORCHESTRATOR_TASK
                and isinstance(request, pb.WorkflowResponse) and ended_by_failure(request)):
            self.notice(request.instanceId)
        return continuation(client_call_details, request)

    def notice(self, instance_id: str) -> None:
        with self._lock:
            self._due[instance_id] = self.lookups

    def due(self) -> list[str]:
        """The instances to look up on this turn; each counts one of its lookups."""
        with self._lock:
            ids = list(self._due)
            for instance_id in ids:
                self._due[instance_id] -= 1
                if self._due[instance_id] <= 0:
                    del self._due[instance_id]
        return ids
