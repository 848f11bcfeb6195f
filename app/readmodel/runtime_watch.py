"""Which workflows the runtime changed without their own code deciding it, noticed as it happens.

An operator's `dapr workflow terminate`, `suspend` or `resume` goes to the sidecar, not to the
API, and the ticket workflow runs no code of its own for it, so it cannot record it. The runtime
still hands the instance to this app's worker to apply the change, and the worker's answer
(`CompleteOrchestratorTask`) shows it: a terminated or failed completion, or a turn that
schedules nothing (a suspend, a resume, an event buffered while suspended). A gRPC client
interceptor on the worker's channel reads that answer, changes nothing in it, and names the
instance to the read model's sweep, which looks it up on its next turns instead of waiting for
its place among every waiting row (benchmarks/view_lag.py). Purges reach no worker: the sweep
still finds those in its turn.
"""

from __future__ import annotations

import threading

import grpc

# The messages the SDK's worker sends; the SDK has no public name for them.
import dapr.ext.workflow._durabletask.internal.protos as pb

COMPLETE_ORCHESTRATOR_TASK = "/TaskHubSidecarService/CompleteOrchestratorTask"
# The runtime commits the change after the worker answers: a lookup on the sweep's next turn can
# still read the state before it, so a noticed instance is looked up on this many turns.
LOOKUPS_PER_NOTICE = 3


def changed_outside_the_workflow(response: pb.WorkflowResponse) -> bool:
    """True for a worker answer that ends the instance other than by completing, or schedules
    nothing (module docstring)."""
    if not response.actions:
        return True
    return any(action.HasField("completeWorkflow")
               and action.completeWorkflow.workflowStatus != pb.ORCHESTRATION_STATUS_COMPLETED
               for action in response.actions)


class RuntimeChangeWatch(grpc.UnaryUnaryClientInterceptor):
    """Observes the worker's answers (never alters them) and keeps the instances to look up."""

    def __init__(self, lookups: int = LOOKUPS_PER_NOTICE):
        self.lookups = lookups
        self._due: dict[str, int] = {}
        self._lock = threading.Lock()

    def intercept_unary_unary(self, continuation, client_call_details, request):
        if (client_call_details.method == COMPLETE_ORCHESTRATOR_TASK
                and isinstance(request, pb.WorkflowResponse)
                and changed_outside_the_workflow(request)):
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
