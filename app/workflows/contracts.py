"""What the ticket workflow, its activities and the API agree on: the names of the workflow, its
activities, child workflows and events, and one pydantic model for each activity's input and
output.

The workflow module imports only this module and `dapr.ext.workflow`, and calls activities by
name (tests/unit/test_workflow_imports.py keeps it so). Everything that crosses the runtime is a
model here, dumped to JSON: a renamed field is a visible change to a contract, not a silent
KeyError in a replay.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from app.delivery.models import DeliverNotificationInput, DeliverNotificationOutput, NotificationToDeliver
from app.domain.ticket import TicketWorkflowInput
from app.domain.triage import TriageResult

__all__ = ["DeliverNotificationInput", "DeliverNotificationOutput", "NotificationToDeliver",
           "TicketWorkflowInput", "TriageResult"]

# -- names -------------------------------------------------------------------------------------
TICKET_WORKFLOW = "ticket_workflow"
# Named versions of the ticket workflow (README "Changing the workflow"). A version stays
# registered until no instance started on it is running.
TICKET_WORKFLOW_V1 = "v1"
TICKET_WORKFLOW_V2 = "v2"  # progress records ride on the next step's input
# v3: steps pass references to the records other steps stored (a claim check), not their text
TICKET_WORKFLOW_V3 = "v3"
# v4: the propose step is told only what it reads of the ticket and its triage (ProposalSubject)
TICKET_WORKFLOW_V4 = "v4"
TICKET_WORKFLOW_LATEST = TICKET_WORKFLOW_V4
# v2: the key, in an activity's input, of the progress record applied before the activity runs.
PROGRESS_FIELD = "progress_record"

# The error type of an activity failure whose cause is a dependency that cannot be reached
# (app/core/unreachable.py): the workflow waits it out instead of failing the step.
DEPENDENCY_UNAVAILABLE = "DependencyUnavailable"
# Patches of the ticket workflow (ctx.is_patched): a change to what a running version does that
# keeps every recorded history replaying. `ride-out-outages`: a step whose dependency cannot be
# reached is waited out (a timer, then the same call again) rather than escalated.
PATCH_RIDE_OUT_OUTAGES = "ride-out-outages"

APPROVAL_EVENT = "solution_approved"
CANCEL_EVENT = "ticket_cancelled"
# Raised by the service to make the runtime run an instance's turn again (a lost answer, a start
# left in the inbox); no workflow version waits for it, so the SDK keeps it and nothing changes.
WAKE_EVENT = "runtime_wake"


class Activities:
    TRIAGE = "triage_ticket"
    SEARCH = "search_knowledge_base"
    PROPOSE = "propose_solution"
    ESCALATE = "escalate_ticket"
    NOTIFY = "notify_customer"
    RECORD = "record_progress"
    STRUCTURE_TRIAGE = "structure_triage"
    STRUCTURE_EXPERT = "structure_expert"
    STOP_AGENT_RUNS = "stop_agent_runs"
    DELIVER = "deliver_notification"
    INDEX_CASE = "index_resolved_case"


# The agents' workflows (dapr-agents registers `dapr.agents.{name}.workflow`) and run ids.
TRIAGE_AGENT = "ticket-triage"
EXPERT_AGENT = "ticket-expert"


def agent_workflow_name(agent: str) -> str:
    return f"dapr.agents.{agent}.workflow"


TRIAGE_AGENT_WORKFLOW = agent_workflow_name(TRIAGE_AGENT)
EXPERT_AGENT_WORKFLOW = agent_workflow_name(EXPERT_AGENT)


# Run ids join the ticket id with '.', which ticket ids never contain: no ticket can take a
# run's id, and no ticket route can address a run.
def triage_run_id(ticket_id: str) -> str:
    return f"{ticket_id}.triage"


def expert_run_id(ticket_id: str, revision: int) -> str:
    return f"{ticket_id}.expert-{revision}"


class AgentRunInput(BaseModel):
    """An agent run's input, written by the ticket workflow (never by the model). The agent reads
    `task`; the tools read `customer_id` to know whose data they may return."""

    task: str
    ticket_id: str
    customer_id: str


def agent_run_input(ticket: TicketWorkflowInput, task: str) -> dict:
    return AgentRunInput(task=task, ticket_id=ticket.ticket_id, customer_id=ticket.customer_id).model_dump()


def triage_task(ticket: TicketWorkflowInput) -> str:
    return (f"Triage support ticket {ticket.ticket_id}. The customer wrote (verbatim, between the "
            f"markers):\n<<<TICKET\n{ticket.description}\nTICKET>>>")


def expert_task(ticket: TicketWorkflowInput, triage: TriageResult, notes: str | None) -> str:
    parts = [
        f"Propose a solution for support ticket {ticket.ticket_id}.",
        f"Triage: category {triage.category}, priority {triage.priority}. {triage.summary}",
    ]
    if triage.system_info:
        parts.append(f"The customer's systems: {json.dumps(triage.system_info)}")
    parts.append("The customer wrote (verbatim, between the markers):\n"
                 f"<<<TICKET\n{ticket.description}\nTICKET>>>")
    if notes:
        parts.append(f"A support engineer rejected the previous proposal with these notes; address "
                     f"them:\n<<<NOTES\n{notes}\nNOTES>>>")
    return "\n\n".join(parts)


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Fields that one version sends and another does not (v3's flags and references, v4's subject in
# place of v1-v3's ticket and triage): left out of the JSON while unset, so an instance of every
# version schedules its steps with the very inputs its history recorded.
def _left_out_while_false():
    return Field(default=False, exclude_if=lambda value: value is False)


def _left_out_while_unset():
    return Field(default=None, exclude_if=lambda value: value is None)


# -- stages ------------------------------------------------------------------------------------
Stage = Literal["pending", "triage", "expert_analysis", "awaiting_approval", "escalating", "notifying",
                "completed", "not_entitled", "escalated", "cancelled", "failed"]
FINAL_STAGES = frozenset({"completed", "not_entitled", "escalated", "cancelled", "failed"})
# workflow_failed, workflow_stuck: raised by the read model's sweep, not by a workflow
# (app/services/failed_tickets.py, app/services/stuck_tickets.py).
EscalationReason = Literal["approval_timeout", "sla_breach", "revisions_exhausted", "system_error",
                           "out_of_scope", "delivery_failed", "no_address", "delivery_uncertain",
                           "workflow_failed", "workflow_stuck"]
NotificationKind = Literal["resolved", "not_entitled", "escalated", "cancelled"]


# -- activity inputs and outputs ---------------------------------------------------------------
class SearchRequest(_Contract):
    ticket_id: str
    query: str
    k: int = 5
    revision: int = 0
    index: int = 0


class SearchHitOut(BaseModel):
    """A hit as the workflow carries it: what ranking and citing need, the article's slug and the
    score. The rest (title, category, snippet) is the article's, read from the knowledge base by
    slug where it is needed: every byte here is kept twice in each ticket's history (the search's
    output and the propose step's input). Histories recorded with a title and category (before
    session 15) or a snippet still read, and their hits write back as they were recorded."""

    model_config = ConfigDict(extra="allow")
    slug: str
    title: str = Field(default="", exclude_if=lambda value: value == "")
    category: str = Field(default="", exclude_if=lambda value: value == "")
    score: float = 0.0

    @classmethod
    def brief(cls, hit) -> "SearchHitOut":
        """From a knowledge-base SearchHit, or a tool's hit as a dict."""
        data = hit if isinstance(hit, dict) else hit.model_dump()
        return cls(**{k: data[k] for k in ("slug", "score") if k in data})


class SearchResult(_Contract):
    hits: list[SearchHitOut]


class PastCase(BaseModel):
    """A past resolution cited next to the articles: an engineer-approved solution of an earlier
    ticket (scrubbed of that customer's data), with its provenance."""

    model_config = ConfigDict(extra="forbid")
    ticket_id: str
    approver: str
    resolved_at: str
    category: str
    cited_articles: list[str] = Field(default_factory=list)
    excerpt: str
    score: float = 0.0
    kind: Literal["past_resolution"] = "past_resolution"


class Proposal(BaseModel):
    """A proposed solution (the expert agent's or the offline composer's)."""

    model_config = ConfigDict(extra="allow")
    summary: str
    likely_causes: list[str] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list)
    cited_articles: list[str] = Field(default_factory=list)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    generated_by: Literal["offline", "llm"] = "offline"
    llm_fallback_reason: str | None = None
    # For the engineer: earlier approved solutions to the same problem. Not in as_text(): the
    # customer reads the solution, not another ticket's provenance.
    past_cases: list[PastCase] = Field(default_factory=list)

    def as_text(self) -> str:
        """The proposal as the customer reads it, when the engineer approves it unedited."""
        steps = "\n".join(f"{i}. {step}" for i, step in enumerate(self.steps, start=1))
        cited = ", ".join(self.cited_articles)
        return f"{self.summary}\n\nSteps:\n{steps}\n\nReferences: {cited}".strip()


class ProposalSubject(_Contract):
    """What the propose step reads of the ticket and its triage (v4). v1-v3 send the whole ticket
    and triage, about 2 KB that every later turn of the workflow replays."""

    ticket_id: str
    description: str
    category: str
    priority: str

    @classmethod
    def of(cls, ticket: TicketWorkflowInput, triage: TriageResult) -> ProposalSubject:
        return cls(ticket_id=ticket.ticket_id, description=ticket.description, category=triage.category,
                   priority=triage.priority)


class ProposeRequest(_Contract):
    # v1-v3: the whole ticket and triage; v4: `subject`. Exactly one of the two is sent.
    ticket: TicketWorkflowInput | None = _left_out_while_unset()
    triage: TriageResult | None = _left_out_while_unset()
    subject: ProposalSubject | None = _left_out_while_unset()
    queries: list[str]
    search_results: list[list[SearchHitOut]]
    revision: int = 0
    notes: str | None = None
    proposal: Proposal | None = None  # the expert agent's, when it answered
    llm_fallback_reason: str | None = None
    proposed_at: str  # the workflow's clock: the same on every retry
    # v3: answer with a ProposalRef; the proposal itself stays in its analysis record.
    by_reference: bool = _left_out_while_false()

    @model_validator(mode="after")
    def _one_subject(self):
        if (self.subject is None) == (self.ticket is None or self.triage is None):
            raise ValueError("a propose request names its subject, or (before v4) the ticket and its triage")
        return self

    def about(self) -> ProposalSubject:
        return self.subject if self.subject is not None else ProposalSubject.of(self.ticket, self.triage)


class ProposalRef(_Contract):
    """What the workflow keeps of a proposal in v3: what it decides and records on. The text is
    in the analysis record of its revision (app/domain/stored.py), where the steps that need it
    (notify, index the case) and the status read it."""

    revision: int
    cited_articles: list[str] = Field(default_factory=list)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    generated_by: Literal["offline", "llm"] = "offline"
    llm_fallback_reason: str | None = None


class EscalateRequest(_Contract):
    ticket_id: str
    customer_id: str
    reason: EscalationReason
    priority: str | None = None
    plan: str | None = None
    overdue_by_seconds: float | None = None
    detail: str | None = None  # what failed, for system_error
    escalated_at: str  # the workflow's clock: the same payload on every retry


def escalation_message_id(ticket_id: str, reason: str) -> str:
    """One escalation per ticket and reason, whoever publishes it and however often."""
    return f"{ticket_id}:escalation:{reason}"


class Escalation(_Contract):
    ticket_id: str
    reason: EscalationReason
    message_id: str
    priority: str | None = None
    plan: str | None = None
    customer_id: str | None = None
    overdue_by_seconds: float | None = None
    detail: str | None = None
    escalated_at: str


class NotifyRequest(_Contract):
    ticket_id: str
    customer_id: str
    customer_name: str | None = None
    kind: NotificationKind
    solution: str | None = None
    # v3: when `solution` is None, the proposal of this revision as approved, read from its
    # analysis record.
    solution_revision: int | None = _left_out_while_unset()
    reason: str | None = None
    use_llm: bool = True
    llm_fallback_reason: str | None = None
    created_at: str  # the workflow's clock
    # v3: answer with a NotificationRef; the body stays in the notification record.
    by_reference: bool = _left_out_while_false()


class NotificationRef(_Contract):
    """A notification without its body (v3): the body is in the notification record of its
    kind (app/domain/stored.py), which delivery and the status read."""

    ticket_id: str
    notification_id: str
    customer_id: str | None = None
    kind: NotificationKind
    subject: str
    generated_by: Literal["offline", "conversation-api"]
    llm_fallback_reason: str | None = None
    created_at: str


class Notification(NotificationRef):
    body: str


class IndexCaseRequest(_Contract):
    """A completed ticket's approved (or engineer-edited) solution, to index as a resolved case.
    The customer's name, id, systems and description are passed only so that the indexed text
    can be scrubbed of them; none of them is stored."""

    ticket_id: str
    customer_id: str
    customer_name: str | None = None
    system_info: dict | None = None
    description: str
    category: str
    # The engineer's edit, or (v3) None and the revision whose approved proposal it is.
    solution: str | None = None
    solution_revision: int | None = _left_out_while_unset()
    edited: bool
    cited_articles: list[str] = Field(default_factory=list)
    approver: str
    resolved_at: str  # the workflow's clock

    @model_validator(mode="after")
    def _names_a_solution(self):
        if self.solution is None and self.solution_revision is None:
            raise ValueError("give the solution or the revision whose proposal was approved")
        return self


class IndexedCase(_Contract):
    ticket_id: str
    created: bool  # False when the ticket's case already existed (a retry, a replay)
    retracted: bool = False
    redactions: int = 0  # how many customer-specific passages the scrubber replaced


class TimelineEvent(_Contract):
    """One event of a ticket's timeline. `key` names the ticket's step, so recording it again
    (a retried activity, a rebuilt read model) adds nothing."""

    key: str
    kind: str
    actor: str
    at: str
    details: dict[str, Any] = Field(default_factory=dict)


class TicketProgress(_Contract):
    """What the read model knows of a ticket; every field optional, merged over the last."""

    customer_id: str | None = None
    filed_at: str | None = None
    filed_by: str | None = None
    description: str | None = None
    stage: Stage | None = None
    priority: str | None = None
    category: str | None = None
    plan: str | None = None
    entitled: bool | None = None
    revision: int | None = None
    awaiting_decision: bool | None = None
    awaiting_since: str | None = None
    escalated: bool | None = None
    escalations: list[str] | None = None
    sla_due: str | None = None
    confidence: float | None = None
    workflow_version: str | None = None


class ProgressRecord(_Contract):
    """One transition of a ticket as the workflow decided it. `seq` grows with every record of
    an instance: the read model applies a record only over an older one, so a stale or retried
    activity can never move a ticket back."""

    ticket_id: str
    seq: int
    progress: TicketProgress
    events: list[TimelineEvent] = Field(default_factory=list)


def filing_progress(ticket: TicketWorkflowInput, version: str | None) -> tuple[TicketProgress, list[TimelineEvent]]:
    """What the read model first knows of a ticket, from its workflow's input alone: the
    workflow's first record, and the row the sweep makes for an instance that never recorded it
    (app/readmodel/sync.py `adopt`)."""
    progress = TicketProgress(customer_id=ticket.customer_id, filed_at=ticket.filed_at, filed_by=ticket.filed_by,
                              description=ticket.description, stage="triage", revision=0, awaiting_decision=False,
                              escalated=False, workflow_version=version)
    return progress, [TimelineEvent(key="filed", kind="filed", actor=ticket.filed_by or "api", at=ticket.filed_at,
                                    details={"customer_id": ticket.customer_id})]


def merge_records(earlier: ProgressRecord, later: ProgressRecord) -> ProgressRecord:
    """Two records of one ticket as one: the later one's fields over the earlier's, both
    records' events, the later seq."""
    progress = earlier.progress.model_copy(update=later.progress.model_dump(exclude_none=True))
    return ProgressRecord(ticket_id=later.ticket_id, seq=later.seq, progress=progress,
                          events=[*earlier.events, *later.events])


def carried_record(payload) -> ProgressRecord | None:
    """The progress record an activity's input carries (v2), if any."""
    if isinstance(payload, dict) and isinstance(payload.get(PROGRESS_FIELD), dict):
        return ProgressRecord.model_validate(payload[PROGRESS_FIELD])
    return None


class ProgressApplied(_Contract):
    applied: bool


class StopAgentRunsRequest(_Contract):
    ticket_id: str
    revisions: int


class StructureTriageRequest(_Contract):
    ticket: TicketWorkflowInput
    triage: TriageResult
    answer: str


class StructureExpertRequest(_Contract):
    ticket: TicketWorkflowInput
    run_id: str
    answer: str


class ExpertOutcome(_Contract):
    proposal: Proposal
    queries: list[str]
    search_results: list[list[SearchHitOut]]


# -- events ------------------------------------------------------------------------------------
class DecisionEvent(BaseModel):
    """The payload of `solution_approved`. The API always sends `revision` and `decision_id`; an
    event raised around it (CLI, sidecar) must name the revision it decides, or it is dropped."""

    model_config = ConfigDict(extra="ignore")
    approved: StrictBool
    revision: int = Field(ge=0)
    final_solution: str | None = None
    support_notes: str | None = None
    approver: str = "unknown (raised outside the API)"
    decision_id: str | None = None
    decided_at: str | None = None

    @field_validator("final_solution", "support_notes")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:  # noqa: N805
        return value if value and value.strip() else None


class CancelEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    by: str = "unknown (raised outside the API)"
    reason: str | None = None
    requested_at: str | None = None


def parse_event(model: type[BaseModel], payload: Any) -> tuple[BaseModel | None, str | None]:
    """(event, None) or (None, why it does not parse). The dapr CLI delivers `--input` as a JSON
    string, so a string is parsed as JSON first. Never raises: no payload may fail a ticket."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None, "payload is not JSON"
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        return None, f"payload is a JSON {type(payload).__name__}, not an object"
    try:
        return model.model_validate(payload), None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in error.errors())
        return None, problems[:300]


# -- what the workflow shows (custom status) and returns (output) -------------------------------
class DecisionAck(_Contract):
    """The workflow's answer to one decision event, read back by the API (like a Temporal
    Update's validator result)."""

    decision_id: str | None
    revision: int | None
    outcome: Literal["applied", "refused"]
    reason: str | None = None
    # Where an applied decision led, so the API answers that stage rather than one read later (a
    # rejection's re-analysis can be waiting again by then). In the custom status only: the output
    # keeps its acks as every history recorded them.
    stage: Stage | None = None


class WorkflowStatusView(_Contract):
    """The workflow's custom status: small, so the history stays small."""

    stage: Stage
    version: str = TICKET_WORKFLOW_LATEST
    revision: int = 0
    category: str | None = None
    priority: str | None = None
    plan: str | None = None
    entitled: bool | None = None
    sla_due: str | None = None
    sla_target: str | None = None
    confidence: float | None = None
    awaiting_since: str | None = None
    escalations: list[str] = Field(default_factory=list)
    acks: list[DecisionAck] = Field(default_factory=list)
    cancel_requested_by: str | None = None
    # A step waiting out a dependency that cannot be reached (ticket_workflow.run_activity).
    waiting_for: str | None = None


class TicketOutcome(_Contract):
    """The workflow's output."""

    ticket_id: str
    stage: Stage
    version: str = TICKET_WORKFLOW_LATEST
    revision: int = 0
    escalations: list[str] = Field(default_factory=list)
    triage: TriageResult | None = None
    proposal: Proposal | None = None
    decision: DecisionEvent | None = None
    final_solution: str | None = None
    escalation: Escalation | None = None
    notification: Notification | None = None
    # v3: references in place of `proposal`, `notification` and an unedited `final_solution`;
    # the status reads the records they name (app/services/tickets.py).
    proposal_ref: ProposalRef | None = None
    notification_ref: NotificationRef | None = None
    delivery: DeliverNotificationOutput | None = None
    delivery_error: str | None = None
    cancellation: CancelEvent | None = None
    system_error: dict[str, str] | None = None
    acks: list[DecisionAck] = Field(default_factory=list)
