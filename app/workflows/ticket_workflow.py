"""The ticket workflow: orchestration only. Every read, write, publish and model call happens in
an activity; this body is replayed and must stay deterministic (no clocks but the context's, no
I/O, logging only when not replaying)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from dapr.ext.workflow import DaprWorkflowContext, RetryPolicy, TaskFailedError, when_all, when_any

from app.activities.escalation import escalate_ticket
from app.activities.kb_search import search_knowledge_base
from app.activities.notification import notify_customer
from app.activities.solution import propose_solution
from app.activities.triage import triage_ticket
from app.domain.ticket import TicketWorkflowInput
from app.notifications.templates import solution_text

APPROVAL_EVENT = "solution_approved"

# Activities do not retry on their own; this policy does (LLM clients included).
RETRY = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=5,
                    backoff_coefficient=2.0, max_retry_interval=timedelta(seconds=30))
# A model call that keeps failing falls back to the offline path sooner.
LLM_RETRY = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3,
                        backoff_coefficient=2.0, max_retry_interval=timedelta(seconds=10))

logger = logging.getLogger(__name__)


def _status(ctx: DaprWorkflowContext, stage: str, **details) -> None:
    ctx.set_custom_status(json.dumps({"stage": stage, **details}))


def _log(ctx: DaprWorkflowContext, message: str, **fields) -> None:
    if not ctx.is_replaying:
        logger.info(message, extra={"ticket_id": ctx.instance_id, **fields})


def ticket_workflow(ctx: DaprWorkflowContext, payload: dict):
    ticket = TicketWorkflowInput.model_validate(payload)
    _log(ctx, "workflow started")

    _status(ctx, "triage")
    triage = yield ctx.call_activity(triage_ticket, input=ticket.model_dump(), retry_policy=RETRY)
    summary = {"category": triage["category"], "priority": triage["priority"],
               "entitled": triage["entitled"], "sla": triage["sla"]}

    if not triage["entitled"]:
        _status(ctx, "notifying", **summary)
        notification = yield from _notify(ctx, triage, "not_entitled", reason=triage["entitlement_reason"])
        return _finish(ctx, "not_entitled", triage=triage, notification=notification)

    revision, notes, decision = 0, None, None
    while True:
        _status(ctx, "expert_analysis", revision=revision, **summary)
        queries = list(triage["kb_queries"]) + ([notes] if notes else [])
        search_results = yield when_all([
            ctx.call_activity(search_knowledge_base, input={"query": q, "k": 5}, retry_policy=RETRY)
            for q in queries
        ])
        proposal = yield ctx.call_activity(propose_solution, retry_policy=RETRY, input={
            "ticket": ticket.model_dump(), "triage": triage, "queries": queries,
            "search_results": search_results, "revision": revision, "notes": notes,
        })

        waiting_since = ctx.current_utc_datetime
        _status(ctx, "awaiting_approval", revision=revision, proposal=proposal,
                awaiting_since=waiting_since.isoformat(), **summary)
        _log(ctx, "awaiting approval", revision=revision)
        timeout_task = ctx.create_timer(waiting_since + timedelta(seconds=ticket.approval_timeout_seconds))
        decision = yield from _wait_for_decision(ctx, revision, timeout_task)
        if decision is None:
            escalation = yield from _escalate(ctx, ticket, triage, "approval_timeout")
            notification = yield from _notify(ctx, triage, "escalated")
            return _finish(ctx, "escalated", triage=triage, proposal=proposal,
                           escalation=escalation, notification=notification)

        _log(ctx, "decision received", approved=bool(decision.get("approved")), revision=revision)
        if decision.get("approved"):
            break
        revision += 1
        if revision > ticket.max_revisions:
            escalation = yield from _escalate(ctx, ticket, triage, "revisions_exhausted")
            notification = yield from _notify(ctx, triage, "escalated")
            return _finish(ctx, "escalated", triage=triage, proposal=proposal, decision=decision,
                           escalation=escalation, notification=notification)
        notes = decision.get("support_notes") or "the engineer asked for another approach"

    _status(ctx, "notifying", revision=revision, **summary)
    final = decision.get("final_solution") or solution_text(proposal)
    notification = yield from _notify(ctx, triage, "resolved", solution=final)
    return _finish(ctx, "completed", triage=triage, proposal=proposal, decision=decision,
                   final_solution=final, notification=notification)


def _wait_for_decision(ctx: DaprWorkflowContext, revision: int, timeout_task):
    """The decision for this revision, or None when the timeout fires first. A decision meant
    for an earlier revision (a repeated request) is dropped and the wait goes on."""
    while True:
        decision_task = ctx.wait_for_external_event(APPROVAL_EVENT)
        winner = yield when_any([decision_task, timeout_task])
        if winner is timeout_task:
            return None
        decision = decision_task.get_result() or {}
        if decision.get("revision", revision) == revision:
            return decision
        _log(ctx, "stale decision dropped", decision_revision=decision.get("revision"), revision=revision)


def _escalate(ctx: DaprWorkflowContext, ticket: TicketWorkflowInput, triage: dict, reason: str):
    overdue = None
    if triage.get("sla"):
        due = datetime.fromisoformat(triage["sla"]["first_response_due"])
        overdue = max(0.0, (ctx.current_utc_datetime - due.replace(tzinfo=None)).total_seconds())
    escalation = yield ctx.call_activity(escalate_ticket, retry_policy=RETRY, input={
        "ticket_id": ticket.ticket_id, "customer_id": ticket.customer_id, "reason": reason,
        "priority": triage["priority"], "plan": triage["plan"], "overdue_by_seconds": overdue,
    })
    return escalation


def _notify(ctx: DaprWorkflowContext, triage: dict, kind: str, solution: str | None = None,
            reason: str | None = None):
    request = {"ticket_id": triage["ticket_id"], "customer_id": triage["customer_id"],
               "customer_name": triage["customer_name"], "kind": kind, "solution": solution,
               "reason": reason}
    try:
        notification = yield ctx.call_activity(notify_customer, input=request, retry_policy=LLM_RETRY)
    except TaskFailedError as error:
        # The model kept failing: the customer still hears from us, from the offline composer.
        _log(ctx, "notification by LLM failed, using offline composer")
        notification = yield ctx.call_activity(notify_customer, retry_policy=RETRY, input={
            **request, "use_llm": False, "llm_fallback_reason": str(error)[:500]})
    return notification


def _finish(ctx: DaprWorkflowContext, stage: str, **output) -> dict:
    _status(ctx, stage)
    _log(ctx, "workflow finished", stage=stage)
    return {"ticket_id": ctx.instance_id, "stage": stage, **output}
