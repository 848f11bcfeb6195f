"""Activity: stop a ticket's agent runs (cancelled ticket, or a run that overran its time). A
child workflow outlives a parent that stops waiting for it, so the ticket ends the runs it
started itself."""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from app.activities import deps
from app.core.logging import ticket_logger
from app.workflows.contracts import StopAgentRunsRequest, expert_run_id, triage_run_id

RUNNING = {"running", "pending", "suspended"}


def stop_agent_runs(ctx: WorkflowActivityContext, request: StopAgentRunsRequest) -> list[str]:
    ticket_id = request.ticket_id
    run_ids = [triage_run_id(ticket_id)] + [expert_run_id(ticket_id, r) for r in range(request.revisions)]
    wf = deps.current().workflows
    stopped = []
    for run_id in run_ids:
        run = wf.get(run_id, payloads=False)
        if run is not None and run.runtime_status in RUNNING:
            wf.terminate(run_id, output={"reason": "stopped by its ticket"})
            stopped.append(run_id)
    if stopped:
        ticket_logger(__name__, ticket_id).info("agent runs stopped", extra={"runs": stopped})
    return stopped
