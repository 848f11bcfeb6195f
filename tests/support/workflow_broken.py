"""A test build whose ticket workflow has a bug: after its first step it raises, so the runtime
ends the instance FAILED and no code of the workflow's own tells anybody. Loaded with
WORKFLOW_VERSIONS_MODULE=tests.support.workflow_broken to show that such a ticket still reaches
a person (app/services/failed_tickets.py)."""

from __future__ import annotations

from app.workflows import contracts as c

BROKEN = "v5-broken"
BUG = "the v5-broken test build raises after its first step"


def ticket_workflow_broken(ctx, payload: dict):
    ticket = c.TicketWorkflowInput.model_validate(payload)
    yield ctx.call_activity(c.Activities.RECORD, input=c.ProgressRecord(
        ticket_id=ticket.ticket_id, seq=1, events=[], progress=c.TicketProgress(
            customer_id=ticket.customer_id, filed_at=ticket.filed_at, filed_by=ticket.filed_by,
            description=ticket.description, stage="triage"),
    ).model_dump(mode="json"))
    raise RuntimeError(BUG)


VERSIONS = {BROKEN: ticket_workflow_broken}
LATEST = BROKEN
