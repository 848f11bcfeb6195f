"""Activity: index a completed ticket's approved solution as a resolved case.

The text indexed is the final solution (the proposal as approved, or the engineer's edit),
scrubbed of the customer's name, id, systems and any passage quoted from the ticket
(app/knowledge/scrub.py); the description itself is never stored. Idempotent per ticket: the
first case of a ticket wins (insert if absent at `case:{ticket_id}`), so a retry or a replay
indexes nothing twice.
"""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from app.activities import deps
from app.activities.stored_records import approved_proposal_text
from app.core.logging import ticket_logger
from app.knowledge.case_store import CaseStore, ResolvedCase
from app.knowledge.scrub import scrub_solution
from app.workflows.contracts import IndexCaseRequest, IndexedCase


def index_resolved_case(ctx: WorkflowActivityContext, request: IndexCaseRequest) -> IndexedCase:
    records = deps.current().records
    solution = request.solution
    if solution is None:
        solution = approved_proposal_text(records, request.ticket_id, request.solution_revision)
    scrubbed = scrub_solution(solution, customer_id=request.customer_id,
                              customer_name=request.customer_name, system_info=request.system_info,
                              description=request.description)
    case = ResolvedCase(ticket_id=request.ticket_id, text=scrubbed.text, category=request.category,
                        cited_articles=request.cited_articles, approver=request.approver,
                        resolved_at=request.resolved_at, edited=request.edited, redactions=scrubbed.redactions)
    created, stored = CaseStore(records).add(case)
    ticket_logger(__name__, request.ticket_id).info("resolved case indexed", extra={
        "case_created": created, "redactions": stored.redactions, "cited_articles": stored.cited_articles})
    return IndexedCase(ticket_id=stored.ticket_id, created=created, retracted=stored.retracted,
                       redactions=stored.redactions)
