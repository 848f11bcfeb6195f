"""The ticket workflow: orchestration only. Every read, write, publish and model call happens in
an activity; this body is replayed and must stay deterministic (no clocks but the context's, no
I/O, logging only when not replaying)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

from dapr.ext.workflow import DaprWorkflowContext, RetryPolicy, TaskFailedError, when_all, when_any

from app.activities.agent_runs import stop_agent_runs
from app.activities.escalation import escalate_ticket
from app.activities.kb_search import search_knowledge_base
from app.activities.notification import notify_customer
from app.activities.solution import propose_solution
from app.activities.triage import triage_ticket
from app.agents.expert_agent import expert_run_input
from app.agents.runs import EXPERT_WORKFLOW, TRIAGE_WORKFLOW, expert_run_id, triage_run_id
from app.agents.structured import structure_expert, structure_triage
from app.agents.triage_agent import triage_run_input
from app.domain.ticket import TicketWorkflowInput
from app.notifications.templates import solution_text

APPROVAL_EVENT = "solution_approved"
CANCEL_EVENT = "ticket_cancelled"

# Activities do not retry on their own; this policy does (LLM clients included).
RETRY = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=5,
                    backoff_coefficient=2.0, max_retry_interval=timedelta(seconds=30))
# A model call that keeps failing falls back to the offline path sooner.
LLM_RETRY = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3,
                        backoff_coefficient=2.0, max_retry_interval=timedelta(seconds=10))

logger = logging.getLogger(__name__)


class TicketCancelled(Exception):
    def __init__(self, request: dict):
        super().__init__("ticket cancelled")
        self.request = request


def ticket_workflow(ctx: DaprWorkflowContext, payload: dict):
    ticket = TicketWorkflowInput.model_validate(payload)
    run = TicketRun(ctx, ticket)
    try:
        return (yield from run.handle())
    except TicketCancelled as cancelled:
        return (yield from run.cancelled(cancelled.request))


class TicketRun:
    """One ticket's orchestration. Holds what the steps share (context, ticket, triage)."""

    def __init__(self, ctx: DaprWorkflowContext, ticket: TicketWorkflowInput):
        self.ctx = ctx
        self.ticket = ticket
        self.triage: dict | None = None
        self.progress: dict = {}
        self.escalations: list[str] = []
        # Created once: a cancellation raised at any time is seen at the next step.
        self.cancel_task = ctx.wait_for_external_event(CANCEL_EVENT)

    # -- the stages ------------------------------------------------------------------------
    def handle(self):
        self.log("workflow started")
        self.status("triage")
        self.triage = yield from self.step(self.activity(triage_ticket, self.ticket.model_dump()))
        if self.triage["entitled"] and self.ticket.use_agents:
            # Entitlement never depends on the agent; a ticket the plan excludes costs no model time.
            self.triage = yield from self.triage_by_agent()
        t = self.triage
        self.progress = {"category": t["category"], "priority": t["priority"], "entitled": t["entitled"],
                         "sla": t["sla"]}
        if not t["entitled"]:
            self.status("notifying")
            notification = yield from self.notify("not_entitled", reason=t["entitlement_reason"])
            return self.finish("not_entitled", triage=t, notification=notification)

        revision, notes = 0, None
        while True:
            proposal = yield from self.analyse(revision, notes)
            decision = yield from self.wait_for_decision(revision, proposal)
            if decision is None:
                escalation = yield from self.escalate("approval_timeout")
                notification = yield from self.notify("escalated")
                return self.finish("escalated", triage=t, proposal=proposal, escalation=escalation,
                                   notification=notification)
            if decision.get("approved"):
                break
            revision += 1
            if revision > self.ticket.max_revisions:
                escalation = yield from self.escalate("revisions_exhausted")
                notification = yield from self.notify("escalated")
                return self.finish("escalated", triage=t, proposal=proposal, decision=decision,
                                   escalation=escalation, notification=notification)
            notes = decision.get("support_notes") or "the engineer asked for another approach"

        self.status("notifying", revision=revision, decision=decision)
        final = decision.get("final_solution") or solution_text(proposal)
        notification = yield from self.notify("resolved", solution=final)
        return self.finish("completed", triage=t, proposal=proposal, decision=decision,
                           final_solution=final, notification=notification)

    def analyse(self, revision: int, notes: str | None):
        """The expert agent's proposal, or one composed offline from knowledge-base queries fanned
        out in parallel; then stores and announces it."""
        self.status("expert_analysis", revision=revision)
        expert = (yield from self.expert_by_agent(revision, notes)) if self.ticket.use_agents else {}
        if "proposal" in expert:
            queries, results = expert["queries"], expert["search_results"]
        else:
            queries = list(self.triage["kb_queries"]) + ([notes] if notes else [])
            searches = [self.activity(search_knowledge_base, {"ticket_id": self.ticket.ticket_id, "query": q,
                                                              "k": 5, "revision": revision, "index": i})
                        for i, q in enumerate(queries)]
            results = yield from self.step(when_all(searches))
        proposal = yield from self.step(self.activity(propose_solution, {
            "ticket": self.ticket.model_dump(), "triage": self.triage, "queries": queries,
            "search_results": results, "revision": revision, "notes": notes,
            "proposal": expert.get("proposal"), "llm_fallback_reason": expert.get("llm_fallback_reason")}))
        return proposal

    # -- the agents (LLM mode): each a child workflow, its answer then structured -----------
    def triage_by_agent(self):
        """The triage agent's category, priority and summary over the offline triage, SLA
        recomputed; the offline triage, saying why, when the agent or its answer fails."""
        run_id = triage_run_id(self.ticket.ticket_id)
        try:
            answer = yield from self.step(self.ctx.call_child_workflow(
                TRIAGE_WORKFLOW, input=triage_run_input(self.ticket), instance_id=run_id))
            return (yield from self.step(self.activity(structure_triage, {
                "ticket": self.ticket.model_dump(), "triage": self.triage,
                "answer": (answer or {}).get("content", "")}, LLM_RETRY)))
        except TaskFailedError as error:
            self.log("triage agent failed, keeping the offline triage")
            return {**self.triage, "llm_fallback_reason": str(error)[:500]}

    def expert_by_agent(self, revision: int, notes: str | None):
        """{proposal, queries, search_results} from the expert agent, or {llm_fallback_reason}
        when the agent or its answer fails."""
        run_id = expert_run_id(self.ticket.ticket_id, revision)
        try:
            answer = yield from self.step(self.ctx.call_child_workflow(
                EXPERT_WORKFLOW, input=expert_run_input(self.ticket, self.triage, notes), instance_id=run_id))
            return (yield from self.step(self.activity(structure_expert, {
                "ticket": self.ticket.model_dump(), "run_id": run_id,
                "answer": (answer or {}).get("content", "")}, LLM_RETRY)))
        except TaskFailedError as error:
            self.log("expert agent failed, composing the proposal offline", revision=revision)
            return {"llm_fallback_reason": str(error)[:500]}

    def wait_for_decision(self, revision: int, proposal: dict):
        """The decision for this revision, or None when the approval timeout fires first.

        While waiting, the SLA's first-response deadline may pass: that publishes an escalation
        once and the wait goes on. A decision meant for an earlier revision is dropped."""
        ctx = self.ctx
        since = ctx.current_utc_datetime
        self.status("awaiting_approval", revision=revision, proposal=proposal,
                    awaiting_since=_iso(since))
        self.log("awaiting approval", revision=revision)
        timeout = ctx.create_timer(since + timedelta(seconds=self.ticket.approval_timeout_seconds))
        sla_timer = None
        if self.progress.get("sla") and "sla_breach" not in self.escalations:
            sla_timer = ctx.create_timer(_utc_naive(self.progress["sla"]["first_response_due"]))
        decision_task = ctx.wait_for_external_event(APPROVAL_EVENT)
        while True:
            waiting = [decision_task, timeout, self.cancel_task] + ([sla_timer] if sla_timer else [])
            winner = yield when_any(waiting)
            if winner is self.cancel_task:
                raise TicketCancelled(self.cancel_task.get_result() or {})
            if winner is timeout:
                return None
            if winner is sla_timer:
                sla_timer = None
                yield from self.escalate("sla_breach")
                self.status("awaiting_approval", revision=revision, proposal=proposal,
                            awaiting_since=_iso(since))
                continue
            decision = decision_task.get_result() or {}
            if decision.get("revision", revision) == revision:
                self.log("decision received", approved=bool(decision.get("approved")), revision=revision)
                return decision
            self.log("stale decision dropped", decision_revision=decision.get("revision"))
            decision_task = ctx.wait_for_external_event(APPROVAL_EVENT)

    def escalate(self, reason: str):
        t = self.triage
        overdue = None
        if t.get("sla"):
            due = _utc_naive(t["sla"]["first_response_due"])
            overdue = max(0.0, (self.ctx.current_utc_datetime - due).total_seconds())
        escalation = yield from self.step(self.activity(escalate_ticket, {
            "ticket_id": self.ticket.ticket_id, "customer_id": self.ticket.customer_id, "reason": reason,
            "priority": t["priority"], "plan": t["plan"], "overdue_by_seconds": overdue}))
        self.escalations.append(reason)
        return escalation

    def notify(self, kind: str, solution: str | None = None, reason: str | None = None,
               cancellable: bool = True):
        t = self.triage or {}
        request = {"ticket_id": self.ticket.ticket_id, "customer_id": self.ticket.customer_id,
                   "customer_name": t.get("customer_name"), "kind": kind, "solution": solution,
                   "reason": reason}
        run = self.step if cancellable else _plain
        try:
            notification = yield from run(self.activity(notify_customer, request, LLM_RETRY))
        except TaskFailedError as error:
            # The model kept failing: the customer still hears from us, from the offline composer.
            self.log("notification by LLM failed, using offline composer")
            notification = yield from run(self.activity(notify_customer, {
                **request, "use_llm": False, "llm_fallback_reason": str(error)[:500]}))
        return notification

    def cancelled(self, request: dict):
        self.log("ticket cancelled", by=request.get("by"))
        self.status("notifying", cancelled_by=request.get("by"))
        if self.ticket.use_agents:
            yield from _plain(self.activity(stop_agent_runs, {"ticket_id": self.ticket.ticket_id,
                                                              "revisions": self.ticket.max_revisions + 1}))
        notification = yield from self.notify("cancelled", reason=request.get("reason"), cancellable=False)
        return self.finish("cancelled", triage=self.triage, cancellation=request, notification=notification)

    # -- plumbing --------------------------------------------------------------------------
    def activity(self, fn, payload: dict, retry: RetryPolicy = RETRY):
        return self.ctx.call_activity(fn, input=payload, retry_policy=retry)

    def step(self, task):
        """Waits for task, unless the ticket is cancelled first."""
        winner = yield when_any([task, self.cancel_task])
        if winner is self.cancel_task:
            raise TicketCancelled(self.cancel_task.get_result() or {})
        return task.get_result()

    def status(self, stage: str, **details) -> None:
        self.ctx.set_custom_status(json.dumps({"stage": stage, **self.progress,
                                               "escalations": self.escalations, **details}))

    def log(self, message: str, **fields) -> None:
        if not self.ctx.is_replaying:
            logger.info(message, extra={"ticket_id": self.ticket.ticket_id, **fields})

    def finish(self, stage: str, **output) -> dict:
        self.status(stage)
        self.log("workflow finished", stage=stage)
        return {"ticket_id": self.ticket.ticket_id, "stage": stage, "escalations": self.escalations,
                **output}


def _plain(task):
    return (yield task)


def _iso(moment: datetime) -> str:
    """The context's clock is naive UTC."""
    return moment.replace(tzinfo=timezone.utc).isoformat()


def _utc_naive(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment
