"""A test build of the next ticket workflow version, v5: the latest released version (v4) with
one new step before it starts (a knowledge-base warm-up query, recorded in the timeline).
Loaded with WORKFLOW_VERSIONS_MODULE=tests.support.workflow_next for the upgrade tests."""

from __future__ import annotations

from app.workflows import contracts as c
from app.workflows.ticket_workflow import run_ticket

NEXT = "v5"


def ticket_workflow_next(ctx, payload: dict):
    ticket = c.TicketWorkflowInput.model_validate(payload)
    yield ctx.call_activity(c.Activities.RECORD, input=c.ProgressRecord(
        ticket_id=ticket.ticket_id, seq=0, progress=c.TicketProgress(),
        events=[c.TimelineEvent(key="next-step", kind="next_step", actor="workflow", at=ticket.filed_at)],
    ).model_dump(mode="json"))
    return (yield from run_ticket(ctx, payload, NEXT, records_on_steps=True, by_reference=True, subject_only=True))


VERSIONS = {NEXT: ticket_workflow_next}
LATEST = NEXT
