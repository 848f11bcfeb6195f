"""The ticket workflow: orchestration only, and the only writer of a ticket's stage and outcome.

Every read, write, publish and model call happens in an activity, called by its contract name;
this body is replayed and must stay deterministic (the context's clock only, no I/O, logging
only when not replaying). It imports nothing of the app but its contracts.

Each transition is recorded twice by the workflow itself: in its custom status (what
`GET /support/status` reads, immediately) and in a progress record for the read model behind
the list and the timeline. No step that fails after its retries ends the ticket in silence: it
escalates with reason `system_error` and the customer is told a person follows up.

Versions (app/workflows/contracts.py); a change to the order or kind of the steps is a new
named version registered beside the others (README, "Changing the workflow"):
- v1: every progress record is a `record_progress` step of its own (8 of a ticket's 16 steps).
- v2: a progress record rides on the next step's input (`progress_record`, applied before the
  step runs, app/workflows/runtime.py); only a record that no step follows at once (before a
  wait, a child workflow or the end) is a `record_progress` step.
- v3: as v2, and the proposal's and the notification's text stay in the records their steps
  stored (app/domain/stored.py): the propose and notify steps answer with references, the notify,
  deliver and case steps read the text back, and the output names the records instead of
  repeating them (a claim check: every payload is kept in the history, and the history is
  replayed at every turn).
- v4: as v3, and the propose step is told only what it reads of the ticket and its triage
  (`ProposalSubject`: id, description, category, priority) instead of both whole: about 2 KB
  less per proposal in the history, replayed at every later turn.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from dapr.ext.workflow import DaprWorkflowContext, RetryPolicy, TaskFailedError, when_all, when_any

from app.workflows import contracts as c

# Activities do not retry on their own; these policies do (the LLM clients included).
RETRY = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=5,
                    backoff_coefficient=2.0, max_retry_interval=timedelta(seconds=30))
# A model call that keeps failing falls back to the offline path sooner.
LLM_RETRY = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3,
                        backoff_coefficient=2.0, max_retry_interval=timedelta(seconds=10))
# Recording progress is local and cheap; a read model that is down must not hold the ticket.
RECORD_RETRY = RetryPolicy(first_retry_interval=timedelta(milliseconds=500), max_number_of_attempts=4,
                           backoff_coefficient=2.0, max_retry_interval=timedelta(seconds=5))
# Mail delivery outlasts its send lease (EMAIL_DELIVERY_LEASE, 60 s) so a retry after a crash
# mid-send can take the delivery over: about 2 minutes in all.
DELIVERY_RETRY = RetryPolicy(first_retry_interval=timedelta(seconds=5), max_number_of_attempts=6,
                             backoff_coefficient=2.0, max_retry_interval=timedelta(seconds=60))
MAX_ACKS = 10
# A dependency that cannot be reached (the broker, a store) is waited out this long between one
# round of a step's retries and the next, up to OUTAGE_HORIZON in all before the ticket goes to
# a person (system_error): an outage of minutes does not escalate every ticket in flight.
OUTAGE_WAIT = timedelta(seconds=30)
OUTAGE_HORIZON = timedelta(minutes=30)

logger = logging.getLogger(__name__)


class TicketCancelled(Exception):
    def __init__(self, event: c.CancelEvent):
        super().__init__("ticket cancelled")
        self.event = event


class StepFailed(Exception):
    """A step failed after its retries: the ticket goes to a person."""

    def __init__(self, step: str, error: Exception):
        super().__init__(f"{step} failed: {error}")
        self.step = step
        self.error = str(error)[:500]


def ticket_workflow_v1(ctx: DaprWorkflowContext, payload: dict):
    return (yield from run_ticket(ctx, payload, c.TICKET_WORKFLOW_V1, records_on_steps=False))


def ticket_workflow_v2(ctx: DaprWorkflowContext, payload: dict):
    return (yield from run_ticket(ctx, payload, c.TICKET_WORKFLOW_V2, records_on_steps=True))


def ticket_workflow_v3(ctx: DaprWorkflowContext, payload: dict):
    return (yield from run_ticket(ctx, payload, c.TICKET_WORKFLOW_V3, records_on_steps=True, by_reference=True))


def ticket_workflow_v4(ctx: DaprWorkflowContext, payload: dict):
    return (yield from run_ticket(ctx, payload, c.TICKET_WORKFLOW_V4, records_on_steps=True, by_reference=True,
                                  subject_only=True))


def run_ticket(ctx: DaprWorkflowContext, payload: dict, version: str, records_on_steps: bool = True,
               by_reference: bool = False, subject_only: bool = False):
    """A ticket's whole orchestration, as the named version records it."""
    ticket = c.TicketWorkflowInput.model_validate(payload)
    run = TicketRun(ctx, ticket, version=version, records_on_steps=records_on_steps, by_reference=by_reference,
                    subject_only=subject_only)
    try:
        outcome = yield from run.handle()
    except TicketCancelled as cancelled:
        outcome = yield from run.cancelled(cancelled.event)
    except StepFailed as failure:
        outcome = yield from run.system_error(failure)
    return outcome.model_dump(mode="json", exclude_none=True)


class TicketRun:
    """One ticket's orchestration. Holds what the steps share."""

    def __init__(self, ctx: DaprWorkflowContext, ticket: c.TicketWorkflowInput, version: str,
                 records_on_steps: bool = True, by_reference: bool = False, subject_only: bool = False):
        self.ctx = ctx
        self.ticket = ticket
        self.version = version
        # v2: records wait in `pending` for the next step to carry them (see the module doc).
        self.records_on_steps = records_on_steps
        # v3: proposals and notifications by reference to their records (see the module doc).
        self.by_reference = by_reference
        # v4: the propose step is told its subject only (see the module doc).
        self.subject_only = subject_only
        self.pending: c.ProgressRecord | None = None
        self.triage: c.TriageResult | None = None
        self.proposal: c.Proposal | c.ProposalRef | None = None
        self.revision = 0
        self.escalations: list[str] = []
        self.acks: list[c.DecisionAck] = []
        self.seq = 0
        self.dropped = 0
        # Once a decision is applied the final message is no longer cancellable.
        self.decided = False
        self.view = c.WorkflowStatusView(stage="triage", version=version)
        self.delivery: c.DeliverNotificationOutput | None = None
        self.delivery_error: str | None = None
        # Created once: a cancellation raised at any time is seen at the next step.
        self.cancel_task = ctx.wait_for_external_event(c.CANCEL_EVENT)

    # -- the stages ------------------------------------------------------------------------
    def handle(self):
        t = self.ticket
        self.log("workflow started")
        self.show("triage")
        yield from self.record(*c.filing_progress(t, self.version))
        triage = c.TriageResult.model_validate((yield from self.run_activity("triage", c.Activities.TRIAGE, t)))
        if triage.entitled and t.use_agents:
            # Entitlement never depends on the agent; a ticket the plan excludes costs no model time.
            triage = yield from self.triage_by_agent(triage)
        self.triage = triage
        self.view = self.view.model_copy(update={
            "category": triage.category, "priority": triage.priority, "plan": triage.plan,
            "entitled": triage.entitled, "sla_due": triage.sla.first_response_due if triage.sla else None,
            "sla_target": triage.sla.first_response_target if triage.sla else None})
        triaged = self.event("triaged", "triaged", "triage-agent" if triage.generated_by == "llm" else "triage",
                             category=triage.category, priority=triage.priority, entitled=triage.entitled,
                             plan=triage.plan, in_scope=triage.in_scope, signals=triage.signals,
                             generated_by=triage.generated_by)
        progress = c.TicketProgress(priority=triage.priority, category=triage.category, plan=triage.plan,
                                    entitled=triage.entitled, sla_due=self.view.sla_due)

        if not triage.entitled:
            yield from self.record(progress.model_copy(update={"stage": "notifying"}), [triaged], "notifying")
            notification = yield from self.notify("not_entitled", reason=triage.entitlement_reason)
            return (yield from self.finish("not_entitled", notification=notification))
        if not triage.in_scope:
            yield from self.record(progress.model_copy(update={"stage": "escalating"}), [triaged], "escalating")
            escalation = yield from self.escalate("out_of_scope", detail=triage.scope_reason)
            notification = yield from self.notify("escalated", reason="out_of_scope")
            return (yield from self.finish("escalated", escalation=escalation, notification=notification))

        yield from self.record(progress.model_copy(update={"stage": "expert_analysis"}), [triaged],
                               "expert_analysis")
        notes = None
        while True:
            proposal, events = yield from self.analyse(notes)
            decision = yield from self.wait_for_decision(proposal, events)
            if decision is None:
                escalation = yield from self.escalate("approval_timeout")
                notification = yield from self.notify("escalated", reason="approval_timeout")
                return (yield from self.finish("escalated", escalation=escalation, notification=notification))
            if decision.approved:
                break
            if self.revision + 1 > t.max_revisions:
                self.show("escalating")
                escalation = yield from self.escalate("revisions_exhausted")
                notification = yield from self.notify("escalated", reason="revisions_exhausted")
                return (yield from self.finish("escalated", decision=decision, escalation=escalation,
                                               notification=notification))
            self.revision += 1
            notes = decision.support_notes or "the engineer asked for another approach"

        self.decided = True
        # v3: an unedited approval is the stored proposal of this revision, read by the steps.
        final = decision.final_solution or (None if self.by_reference else proposal.as_text())
        notification = yield from self.notify("resolved", solution=final)
        yield from self.index_case(decision, final, proposal)
        return (yield from self.finish("completed", decision=decision, final_solution=final,
                                       notification=notification))

    def analyse(self, notes: str | None):
        """The expert agent's proposal, or one composed offline from knowledge-base queries fanned
        out in parallel; stored and announced by the propose step."""
        revision = self.revision
        self.show("expert_analysis")
        expert = (yield from self.expert_by_agent(notes)) if self.ticket.use_agents else None
        if isinstance(expert, c.ExpertOutcome):
            queries, results, agent_proposal, fallback = expert.queries, expert.search_results, expert.proposal, None
        else:
            queries = list(self.triage.kb_queries) + ([notes] if notes else [])
            searches = [self.activity(c.Activities.SEARCH, c.SearchRequest(
                ticket_id=self.ticket.ticket_id, query=q, k=5, revision=revision, index=i)) for i, q in enumerate(queries)]
            found = yield from self.run_step("search", when_all(searches))
            results = [c.SearchResult.model_validate(r).hits for r in found]
            agent_proposal, fallback = None, expert
        answer = c.ProposalRef if self.by_reference else c.Proposal
        proposal = answer.model_validate((yield from self.run_activity(
            "propose", c.Activities.PROPOSE, c.ProposeRequest(
                **self.propose_subject(), queries=queries, search_results=results,
                revision=revision, notes=notes, proposal=agent_proposal, llm_fallback_reason=fallback,
                proposed_at=self.now(), by_reference=self.by_reference))))
        self.proposal = proposal
        self.view = self.view.model_copy(update={"confidence": proposal.confidence})
        events = [self.event(f"kb_query:{revision}:{i}", "kb_query", "expert", query=q,
                             top_articles=[h.slug for h in hits[:3]])
                  for i, (q, hits) in enumerate(zip(queries, results))]
        events += [self.event(f"proposed:{revision}", "proposed", "expert", revision=revision,
                              cited_articles=proposal.cited_articles, confidence=proposal.confidence,
                              generated_by=proposal.generated_by, notes=notes,
                              llm_fallback_reason=proposal.llm_fallback_reason),
                   self.event(f"solution_published:{revision}", "solution_published", "expert",
                              revision=revision, message_id=f"{self.ticket.ticket_id}:solution-ready:{revision}")]
        return proposal, events

    def propose_subject(self) -> dict:
        if self.subject_only:
            return {"subject": c.ProposalSubject.of(self.ticket, self.triage)}
        return {"ticket": self.ticket, "triage": self.triage}

    def wait_for_decision(self, proposal: c.Proposal | c.ProposalRef, events: list[c.TimelineEvent]):
        """The decision for this revision, or None when the approval timeout fires first.

        While waiting, the SLA's first-response deadline may pass: that publishes an escalation
        once and the wait goes on. A decision that does not parse, or names another revision,
        is refused (the API reads the refusal back) and the wait goes on."""
        ctx, revision = self.ctx, self.revision
        since = ctx.current_utc_datetime
        self.view = self.view.model_copy(update={"awaiting_since": _iso(since)})
        self.show("awaiting_approval")
        yield from self.record(c.TicketProgress(stage="awaiting_approval", revision=revision, awaiting_decision=True,
                                                awaiting_since=_iso(since), confidence=proposal.confidence),
                               events)
        yield from self.flush()
        self.log("awaiting approval", revision=revision)
        timeout = ctx.create_timer(since + timedelta(seconds=self.ticket.approval_timeout_seconds))
        sla_timer = None
        if self.view.sla_due and "sla_breach" not in self.escalations:
            sla_timer = ctx.create_timer(_utc_naive(self.view.sla_due))
        decision_task = ctx.wait_for_external_event(c.APPROVAL_EVENT)
        while True:
            yield from self.flush()  # an escalation or a dropped decision recorded meanwhile
            waiting = [decision_task, timeout, self.cancel_task] + ([sla_timer] if sla_timer else [])
            winner = yield when_any(waiting)
            if winner is self.cancel_task:
                raise TicketCancelled(self.cancel_event())
            if winner is timeout:
                # Leaves awaiting_approval before escalating: a decision now gets 409, not 202.
                self.show("escalating")
                if decision_task.is_complete:
                    self.refuse(decision_task.get_result(), "the approval timed out first")
                return None
            if winner is sla_timer:
                sla_timer = None
                yield from self.escalate("sla_breach")
                self.show("awaiting_approval")
                continue
            decision, problem = c.parse_event(c.DecisionEvent, decision_task.get_result())
            if problem is None and decision.revision != revision:
                problem = f"the decision is for revision {decision.revision}; revision {revision} is waiting"
            if problem is not None:
                # A fresh waiter only when this one is used up: an orphaned waiter would take
                # the next decision raised.
                decision_task = ctx.wait_for_external_event(c.APPROVAL_EVENT)
                yield from self.drop_decision(winner.get_result(), problem)
                continue
            self.log("decision received", approved=decision.approved, revision=revision)
            yield from self.apply_decision(decision)
            return decision

    def apply_decision(self, decision: c.DecisionEvent):
        next_stage = "notifying" if decision.approved else "expert_analysis"
        if not decision.approved and self.revision >= self.ticket.max_revisions:
            next_stage = "escalating"
        self.ack(c.DecisionAck(decision_id=decision.decision_id, revision=decision.revision, outcome="applied",
                               stage=next_stage))
        self.show(next_stage, revision=self.revision + (0 if decision.approved else 1))
        yield from self.record(
            c.TicketProgress(stage=self.view.stage, revision=self.view.revision, awaiting_decision=False),
            [self.event(f"decision:{decision.revision}", "decision", decision.approver,
                        approved=decision.approved, revision=decision.revision,
                        support_notes=decision.support_notes, final_solution=decision.final_solution,
                        decided_at=decision.decided_at, decision_id=decision.decision_id)])

    def drop_decision(self, payload, problem: str):
        self.dropped += 1
        self.log("decision dropped", reason=problem)
        decision_id = payload.get("decision_id") if isinstance(payload, dict) else None
        self.ack(c.DecisionAck(decision_id=decision_id if isinstance(decision_id, str) else None,
                               revision=self.revision, outcome="refused", reason=problem))
        self.show(self.view.stage)
        yield from self.record(c.TicketProgress(), [self.event(
            f"decision_dropped:{self.dropped}", "decision_dropped", "workflow", reason=problem,
            revision=self.revision)])

    # -- the agents (LLM mode): each a child workflow raced against a timer -----------------
    def triage_by_agent(self, offline: c.TriageResult):
        """The triage agent's category, priority and summary over the offline triage, SLA
        recomputed; the offline triage, saying why, when the agent or its answer fails."""
        run_id = c.triage_run_id(self.ticket.ticket_id)
        try:
            answer = yield from self.child(c.TRIAGE_AGENT_WORKFLOW, run_id, _triage_run_input(self.ticket))
            return c.TriageResult.model_validate((yield from self.step(self.activity(
                c.Activities.STRUCTURE_TRIAGE, c.StructureTriageRequest(
                    ticket=self.ticket, triage=offline, answer=(answer or {}).get("content", "")),
                LLM_RETRY))))
        except TaskFailedError as error:
            self.log("triage agent failed, keeping the offline triage")
            return offline.model_copy(update={"llm_fallback_reason": str(error)[:500]})

    def expert_by_agent(self, notes: str | None):
        """The expert agent's outcome, or why it is missing (a str) when it fails."""
        run_id = c.expert_run_id(self.ticket.ticket_id, self.revision)
        try:
            answer = yield from self.child(c.EXPERT_AGENT_WORKFLOW, run_id,
                                           _expert_run_input(self.ticket, self.triage, notes))
            return c.ExpertOutcome.model_validate((yield from self.step(self.activity(
                c.Activities.STRUCTURE_EXPERT, c.StructureExpertRequest(
                    ticket=self.ticket, run_id=run_id, answer=(answer or {}).get("content", "")),
                LLM_RETRY))))
        except TaskFailedError as error:
            self.log("expert agent failed, composing the proposal offline", revision=self.revision)
            return str(error)[:500]

    def child(self, workflow: str, run_id: str, run_input: dict):
        """A child workflow's result; TaskFailedError when it fails or overruns its time (the
        run is then stopped, so it cannot act later)."""
        yield from self.flush()
        run = self.ctx.call_child_workflow(workflow, input=run_input, instance_id=run_id)
        deadline = self.ctx.create_timer(
            self.ctx.current_utc_datetime + timedelta(seconds=self.ticket.agent_timeout_seconds))
        winner = yield when_any([run, deadline, self.cancel_task])
        if winner is self.cancel_task:
            raise TicketCancelled(self.cancel_event())
        if winner is deadline:
            yield from self.plain(self.activity(c.Activities.STOP_AGENT_RUNS, c.StopAgentRunsRequest(
                ticket_id=self.ticket.ticket_id, revisions=self.revision + 1)))
            raise _task_failed(f"agent run {run_id} took longer than {self.ticket.agent_timeout_seconds:g}s")
        return run.get_result()

    # -- effects ---------------------------------------------------------------------------
    def escalate(self, reason: str, detail: str | None = None, fatal: bool = True):
        t = self.triage
        overdue = None
        if self.view.sla_due:
            due = _utc_naive(self.view.sla_due)
            overdue = max(0.0, (self.ctx.current_utc_datetime - due).total_seconds())
        request = c.EscalateRequest(ticket_id=self.ticket.ticket_id, customer_id=self.ticket.customer_id,
                                    reason=reason, priority=t.priority if t else None, plan=t.plan if t else None,
                                    overdue_by_seconds=overdue, detail=detail, escalated_at=self.now())
        if fatal:
            escalation = yield from self.run_activity("escalate", c.Activities.ESCALATE, request)
        else:
            escalation = yield from self.plain(self.activity(c.Activities.ESCALATE, request))
        escalation = c.Escalation.model_validate(escalation)
        self.escalations.append(reason)
        self.show(self.view.stage)
        yield from self.record(c.TicketProgress(escalated=True, escalations=list(self.escalations)), [self.event(
            f"escalated:{reason}", "escalated", "sla-monitor" if reason == "sla_breach" else "workflow",
            reason=reason, overdue_by_seconds=overdue, detail=detail, message_id=escalation.message_id)])
        return escalation

    def notify(self, kind: str, solution: str | None = None, reason: str | None = None):
        """The customer's message. Never raced against a cancellation: once a message is being
        written it is sent, and the ticket ends on it."""
        self.show("notifying")
        t = self.triage
        # v3: an unedited approval's text is read from the proposal's record by the step.
        by_revision = self.by_reference and kind == "resolved" and solution is None
        request = c.NotifyRequest(ticket_id=self.ticket.ticket_id, customer_id=self.ticket.customer_id,
                                  customer_name=t.customer_name if t else None, kind=kind, solution=solution,
                                  solution_revision=self.revision if by_revision else None, reason=reason,
                                  created_at=self.now(), by_reference=self.by_reference)
        try:
            notification = yield from self.run_activity("notify", c.Activities.NOTIFY, request, LLM_RETRY,
                                                        cancellable=False)
        except StepFailed as failure:
            # The model kept failing: the customer still hears from us, from the offline composer.
            self.log("notification by LLM failed, using the offline composer")
            notification = yield from self.run_activity("notify", c.Activities.NOTIFY, request.model_copy(
                update={"use_llm": False, "llm_fallback_reason": failure.error}), cancellable=False)
        notification = (c.NotificationRef if self.by_reference else c.Notification).model_validate(notification)
        yield from self.record(c.TicketProgress(), [self.event(
            f"notified:{kind}", "notification_sent", "notifier", kind=kind, generated_by=notification.generated_by,
            notification_id=notification.notification_id, llm_fallback_reason=notification.llm_fallback_reason)])
        yield from self.deliver(notification)
        return notification

    def deliver(self, notification: c.Notification | c.NotificationRef):
        """Mails the notification to the customer. A customer with no address, or a delivery
        that fails after its retries, goes to a person (escalated); the ticket still ends."""
        t = self.triage
        if self.by_reference:
            request = c.DeliverNotificationInput(ticket_id=self.ticket.ticket_id, priority=t.priority if t else None,
                                                 kind=notification.kind)
        else:
            request = c.DeliverNotificationInput(
                ticket_id=self.ticket.ticket_id, priority=t.priority if t else None,
                notification=c.NotificationToDeliver(
                    ticket_id=notification.ticket_id, customer_id=notification.customer_id, kind=notification.kind,
                    subject=notification.subject, body=notification.body, notification_id=notification.notification_id))
        try:
            delivery = c.DeliverNotificationOutput.model_validate((yield from self.plain(
                self.activity(c.Activities.DELIVER, request, DELIVERY_RETRY))))
        except TaskFailedError as error:
            self.delivery, self.delivery_error = None, str(error)[:500]
            yield from self.record(c.TicketProgress(), [self.event(
                f"delivery:{notification.kind}", "delivery_failed", "mailer", reason=self.delivery_error)])
            yield from self.escalate_quietly("delivery_failed", self.delivery_error)
            return
        self.delivery, self.delivery_error = delivery, None
        if not delivery.reached_customer:
            # uncertain: an earlier attempt may have mailed it; a person checks rather than mail twice.
            reason = "no_address" if delivery.status == "no_address" else "delivery_uncertain"
            yield from self.record(c.TicketProgress(), [self.event(
                f"delivery:{notification.kind}", "delivery_failed", "mailer", reason=delivery.reason)])
            yield from self.escalate_quietly(reason, delivery.reason)
            return
        yield from self.record(c.TicketProgress(), [self.event(
            f"delivery:{notification.kind}", "delivered", "mailer", channel="email", attempts=delivery.attempts,
            sent_at=delivery.sent_at, notification_id=delivery.notification_id)])

    def index_case(self, decision: c.DecisionEvent, final: str | None, proposal: c.Proposal | c.ProposalRef):
        """The approved solution becomes a resolved case the expert step can cite later. A case
        that cannot be indexed is recorded in the timeline; the ticket completes all the same."""
        t = self.triage
        request = c.IndexCaseRequest(
            ticket_id=self.ticket.ticket_id, customer_id=self.ticket.customer_id, customer_name=t.customer_name,
            system_info=t.system_info, description=self.ticket.description, category=t.category,
            solution=final, solution_revision=self.revision if final is None else None,
            edited=decision.final_solution is not None, cited_articles=proposal.cited_articles,
            approver=decision.approver, resolved_at=self.now())
        try:
            indexed = c.IndexedCase.model_validate((yield from self.plain(
                self.activity(c.Activities.INDEX_CASE, request, RECORD_RETRY))))
        except TaskFailedError as error:
            self.log("resolved case not indexed", error=str(error)[:300])
            yield from self.record(c.TicketProgress(), [self.event(
                "case_indexed", "case_index_failed", "knowledge-base", reason=str(error)[:500])])
            return
        yield from self.record(c.TicketProgress(), [self.event(
            "case_indexed", "case_indexed", "knowledge-base", case_id=indexed.ticket_id, created=indexed.created,
            edited=request.edited, redactions=indexed.redactions)])

    def escalate_quietly(self, reason: str, detail: str | None):
        """An escalation that must not end the ticket a second way: its own failure is recorded."""
        if reason in self.escalations:
            return
        try:
            yield from self.escalate(reason, detail=detail, fatal=False)
        except TaskFailedError as error:
            self.log("escalation failed", reason=reason, error=str(error)[:300])

    def record(self, progress: c.TicketProgress, events: list[c.TimelineEvent], stage: str | None = None):
        """One transition in the read model; its failure is logged, never the ticket's."""
        self.seq += 1
        if stage is not None:
            progress = progress.model_copy(update={"stage": stage})
        record = c.ProgressRecord(ticket_id=self.ticket.ticket_id, seq=self.seq, progress=progress, events=events)
        if self.records_on_steps:
            self.pending = record if self.pending is None else c.merge_records(self.pending, record)
            return
        yield from self.record_step(record)

    def flush(self):
        """v2: the pending record as a step of its own, when no step follows to carry it."""
        if self.pending is not None:
            record, self.pending = self.pending, None
            yield from self.record_step(record)

    def record_step(self, record: c.ProgressRecord):
        try:
            yield from self.plain(self.activity(c.Activities.RECORD, record, RECORD_RETRY))
        except TaskFailedError:
            self.log("progress not recorded: a read-model rebuild restores it from the workflow's history",
                     seq=record.seq)

    # -- endings ---------------------------------------------------------------------------
    def finish(self, stage: str, **fields):
        if self.delivery_error or (self.delivery and not self.delivery.reached_customer):
            stage = "escalated"  # the customer was not reached: a person follows up
        fields.setdefault("delivery", self.delivery)
        fields.setdefault("delivery_error", self.delivery_error)
        proposal = self.proposal
        if self.by_reference:
            fields["notification_ref"] = fields.pop("notification", None)
            fields["proposal_ref"], proposal = proposal, None
        # Recorded first: the status shows the final stage only once nothing is left to run.
        yield from self.record(c.TicketProgress(stage=stage, awaiting_decision=False, escalations=list(self.escalations)),
                               [self.event("finished", "finished", "workflow", stage=stage)])
        yield from self.flush()
        self.show(stage)
        self.log("workflow finished", stage=stage)
        return c.TicketOutcome(ticket_id=self.ticket.ticket_id, stage=stage, version=self.version,
                               revision=self.revision, escalations=list(self.escalations), triage=self.triage,
                               proposal=proposal, acks=[a.model_copy(update={"stage": None}) for a in self.acks],
                               **fields)

    def cancelled(self, event: c.CancelEvent):
        self.log("ticket cancelled", by=event.by)
        self.view = self.view.model_copy(update={"cancel_requested_by": event.by})
        self.show("notifying")
        yield from self.record(c.TicketProgress(stage="notifying", awaiting_decision=False), [self.event(
            "cancelled", "cancelled", event.by, reason=event.reason, requested_at=event.requested_at)])
        try:
            if self.ticket.use_agents:
                yield from self.plain(self.activity(c.Activities.STOP_AGENT_RUNS, c.StopAgentRunsRequest(
                    ticket_id=self.ticket.ticket_id, revisions=self.revision + 1)))
            notification = yield from self.notify("cancelled", reason=event.reason)
        except (TaskFailedError, StepFailed) as error:
            return (yield from self.system_error(error if isinstance(error, StepFailed) else StepFailed("cancel", error)))
        return (yield from self.finish("cancelled", cancellation=event, notification=notification))

    def system_error(self, failure: StepFailed):
        """A step failed after its retries: escalate to a person and tell the customer one will
        follow up. Each of those is tried even when the other fails; nothing here raises."""
        self.log("step failed, escalating to a person", step=failure.step, error=failure.error)
        self.decided = True  # nothing more to cancel: the ticket is ending
        self.show("escalating")
        detail = f"{failure.step}: {failure.error}"
        errors = {"step": failure.step, "error": failure.error}
        escalation = notification = None
        if failure.step != "escalate":
            try:
                escalation = yield from self.escalate("system_error", detail=detail, fatal=False)
            except TaskFailedError as error:
                errors["escalation_error"] = str(error)[:500]
        if failure.step != "notify":
            try:
                notification = yield from self.notify("escalated", reason="system_error")
            except StepFailed as error:
                errors["notification_error"] = error.error
        if "system_error" not in self.escalations:
            self.escalations.append("system_error")
        return (yield from self.finish("escalated", escalation=escalation, notification=notification,
                                       system_error=errors))

    # -- plumbing --------------------------------------------------------------------------
    def activity(self, name: str, request, retry: RetryPolicy = RETRY):
        return self.ctx.call_activity(name, input=self.payload(request), retry_policy=retry)

    def payload(self, request) -> dict:
        """The activity's input; v2: with the progress record waiting to ride on it."""
        payload = request.model_dump(mode="json")
        if self.pending is not None:
            payload[c.PROGRESS_FIELD] = self.pending.model_dump(mode="json")
            self.pending = None
        return payload

    def run_step(self, step: str, task):
        """A step's result; StepFailed when it failed after its retries."""
        try:
            return (yield from self.step(task))
        except TaskFailedError as error:
            raise StepFailed(step, error) from error

    def run_activity(self, step: str, name: str, request, retry: RetryPolicy = RETRY, cancellable: bool = True):
        """One activity as a step: its result, or StepFailed once it failed after its retries.
        A failure whose cause is a dependency that cannot be reached (DEPENDENCY_UNAVAILABLE) is
        waited out (OUTAGE_WAIT) and the same call made again, up to OUTAGE_HORIZON."""
        payload = self.payload(request)
        wait = self.step if cancellable else self.plain
        waited, since = timedelta(0), None
        while True:
            task = self.ctx.call_activity(name, input=payload, retry_policy=retry)
            try:
                result = yield from wait(task)
                if waited:
                    self.show(self.view.stage, waiting_for=None)
                return result
            except TaskFailedError as error:
                if not self.rides_out(error, waited):
                    raise StepFailed(step, error) from error
            self.log("a dependency of the step cannot be reached: waiting", step=step,
                     waited_seconds=int(waited.total_seconds()))
            since = since or self.now()
            self.show(self.view.stage, waiting_for=f"{step}: a dependency cannot be reached (since {since})")
            timer = self.ctx.create_timer(self.ctx.current_utc_datetime + OUTAGE_WAIT)
            yield from wait(timer)
            waited += OUTAGE_WAIT

    def rides_out(self, error: TaskFailedError, waited: timedelta) -> bool:
        # The patch is read only here, where a failure happened: histories recorded before it
        # replay as they ran (the failure then ended the step).
        return (error.details.error_type == c.DEPENDENCY_UNAVAILABLE and waited < OUTAGE_HORIZON
                and self.ctx.is_patched(c.PATCH_RIDE_OUT_OUTAGES))

    def step(self, task):
        """Waits for task, unless the ticket is cancelled first (until a decision is applied)."""
        if self.decided:
            return (yield from self.plain(task))
        winner = yield when_any([task, self.cancel_task])
        if winner is self.cancel_task:
            raise TicketCancelled(self.cancel_event())
        return task.get_result()

    @staticmethod
    def plain(task):
        return (yield task)

    def cancel_event(self) -> c.CancelEvent:
        event, _problem = c.parse_event(c.CancelEvent, self.cancel_task.get_result())
        return event or c.CancelEvent()

    def refuse(self, payload, reason: str) -> None:
        decision_id = payload.get("decision_id") if isinstance(payload, dict) else None
        self.ack(c.DecisionAck(decision_id=decision_id if isinstance(decision_id, str) else None,
                               revision=self.revision, outcome="refused", reason=reason))
        self.show(self.view.stage)

    def ack(self, ack: c.DecisionAck) -> None:
        self.acks = (self.acks + [ack])[-MAX_ACKS:]

    def show(self, stage: str, **updates) -> None:
        self.view = self.view.model_copy(update={"stage": stage, "revision": self.revision,
                                                 "escalations": list(self.escalations),
                                                 "acks": list(self.acks), **updates})
        self.ctx.set_custom_status(self.view.model_dump_json(exclude_none=True))

    def event(self, key: str, kind: str, actor: str, /, **details) -> c.TimelineEvent:
        return c.TimelineEvent(key=key, kind=kind, actor=actor, at=self.now(),
                               details={k: v for k, v in details.items() if v is not None})

    def now(self) -> str:
        return _iso(self.ctx.current_utc_datetime)

    def log(self, message: str, **fields) -> None:
        if not self.ctx.is_replaying:
            logger.info(message, extra={"ticket_id": self.ticket.ticket_id, **fields})


def _task_failed(message: str) -> TaskFailedError:
    from dapr.ext.workflow._durabletask.internal import protos as pb

    return TaskFailedError(message, pb.TaskFailureDetails(errorMessage=message, errorType="AgentTimeout"))


def _triage_run_input(ticket: c.TicketWorkflowInput) -> dict:
    return c.agent_run_input(ticket, c.triage_task(ticket))


def _expert_run_input(ticket: c.TicketWorkflowInput, triage: c.TriageResult, notes: str | None) -> dict:
    return c.agent_run_input(ticket, c.expert_task(ticket, triage, notes))


def _iso(moment: datetime) -> str:
    """The context's clock is naive UTC."""
    return moment.replace(tzinfo=timezone.utc).isoformat()


def _utc_naive(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment
