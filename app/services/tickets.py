"""Ticket operations behind the REST routes: file, read status, deliver a decision.

Kept out of the routes so the rules (what conflicts, what is unknown) live in one place.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from dapr.ext.workflow import DaprWorkflowClient, WorkflowState, WorkflowStatus
from grpc import RpcError

from app.core.config import Settings
from app.domain.status import FINAL_STAGES, TicketStatus
from app.domain.ticket import TicketRequest, TicketWorkflowInput
from app.services import ticket_records
from app.services.ticket_records import event, record_events
from app.store import StateStore
from app.workflows.ticket_workflow import APPROVAL_EVENT, CANCEL_EVENT, ticket_workflow


class TicketError(Exception):
    """A request the service refuses; `status_code` says how."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TicketNotFound(TicketError):
    status_code = 404


class TicketConflict(TicketError):
    status_code = 409


class UnknownCustomer(TicketError):
    status_code = 422


def _json(text: str | None) -> dict:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


def to_status(ticket_id: str, state: WorkflowState) -> TicketStatus:
    runtime = state.runtime_status
    custom = _json(state.serialized_custom_status)
    if runtime == WorkflowStatus.COMPLETED:
        output = _json(state.serialized_output)
        stage = output.get("stage", "completed")
    elif runtime == WorkflowStatus.FAILED:
        details = state.failure_details
        output = {"error": details.message if details else "workflow failed", "last_progress": custom}
        stage = "failed"
    elif runtime == WorkflowStatus.TERMINATED:
        output, stage = {"last_progress": custom}, "cancelled"
    else:
        output, stage = custom, custom.get("stage", "pending")
    progress = custom or output.get("last_progress", {})
    triage = output.get("triage") or {}
    sla = progress.get("sla") or triage.get("sla") or {}
    waiting = None
    if stage == "awaiting_approval" and progress.get("awaiting_since"):
        since = datetime.fromisoformat(progress["awaiting_since"])
        waiting = round((datetime.now(timezone.utc) - since).total_seconds(), 3)
    return TicketStatus(ticket_id=ticket_id, instance_id=state.instance_id,
                        status=runtime.name.lower(), stage=stage, output=output,
                        created_at=_iso(state.created_at), last_updated_at=_iso(state.last_updated_at),
                        sla_due=sla.get("first_response_due"), waiting_seconds=waiting,
                        revision=int(progress.get("revision", (output.get("decision") or {}).get("revision", 0))),
                        decision=output.get("decision") or progress.get("decision"),
                        escalations=output.get("escalations") or progress.get("escalations") or [])


# daprd 1.18.1 answers a workflow's state from two reads (metadata, then its inbox and history)
# taken outside the workflow actor: a save landing between them fails the read with "inbox key
# ... declared in metadata ... but missing from state store" (dapr/dapr#10242). Nothing is
# wrong on disk and the next read succeeds, so that error is read again, at once.
_TORN_READ = "missing from state store"


def workflow_state(wf: DaprWorkflowClient, ticket_id: str, attempts: int = 4) -> WorkflowState | None:
    for attempt in range(attempts):
        try:
            return wf.get_workflow_state(ticket_id, fetch_payloads=True)
        except RpcError as error:
            details = error.details() if hasattr(error, "details") else str(error)
            if attempt == attempts - 1 or _TORN_READ not in (details or ""):
                raise
    return None  # not reached


def get_status(wf: DaprWorkflowClient, ticket_id: str, visible_to: str | None = None) -> TicketStatus:
    """The ticket's status; with visible_to, only if that client filed it (else unknown)."""
    state = workflow_state(wf, ticket_id)
    if state is None or (visible_to is not None and _json(state.serialized_input).get("filed_by") != visible_to):
        raise TicketNotFound(f"no ticket {ticket_id!r}")
    return to_status(ticket_id, state)


def _same_ticket(state: WorkflowState, request: TicketRequest) -> bool:
    filed = _json(state.serialized_input)
    return filed.get("customer_id") == request.customer_id and filed.get("description") == request.description


def file_ticket(wf: DaprWorkflowClient, records: StateStore, customers: StateStore,
                settings: Settings, request: TicketRequest, filed_by: str) -> tuple[bool, str]:
    """Starts the ticket's workflow; (created, instance_id). Filing the same ticket again is a
    no-op; the same id with other content is a conflict. A finished ticket is never restarted
    (Dapr would replace its history)."""
    existing = workflow_state(wf, request.ticket_id)
    if existing is not None:
        return False, _repeat_filing(existing, request, records, filed_by)
    if customers.get_value(request.customer_id) is None:
        raise UnknownCustomer(f"unknown customer_id {request.customer_id!r}")

    filed_at = datetime.now(timezone.utc).isoformat()
    workflow_input = TicketWorkflowInput(
        ticket_id=request.ticket_id, customer_id=request.customer_id,
        description=request.description, filed_at=filed_at,
        approval_timeout_seconds=settings.approval_timeout, max_revisions=settings.max_revisions,
        filed_by=filed_by, use_agents=settings.llm_configured,
    )
    try:
        instance_id = wf.schedule_new_workflow(ticket_workflow, input=workflow_input.model_dump(),
                                               instance_id=request.ticket_id)
    except RpcError:
        # Lost a race with a concurrent filing of the same id: answer as for a repeat.
        existing = workflow_state(wf, request.ticket_id)
        if existing is None:
            raise
        return False, _repeat_filing(existing, request, records, filed_by)
    _index(records, request.ticket_id, request.customer_id, filed_at, filed_by)
    return True, instance_id


def _repeat_filing(existing: WorkflowState, request: TicketRequest, records: StateStore, filed_by: str) -> str:
    if not _same_ticket(existing, request):
        raise TicketConflict(f"ticket {request.ticket_id!r} already exists with different content")
    filed = _json(existing.serialized_input)
    # A crash between starting the workflow and indexing it is repaired by the client's retry.
    _index(records, request.ticket_id, request.customer_id, filed.get("filed_at"), filed.get("filed_by") or filed_by)
    return existing.instance_id


def _index(records: StateStore, ticket_id: str, customer_id: str, filed_at: str | None, filed_by: str) -> None:
    ticket_records.index_ticket(records, ticket_id)
    # Recorded after the workflow started, but dated when it was filed (its first event).
    record_events(records, ticket_id, [event("filed", "filed", filed_by, at=filed_at, customer_id=customer_id)],
                  customer_id=customer_id, filed_at=filed_at, filed_by=filed_by, status="running")


def submit_decision(wf: DaprWorkflowClient, records: StateStore, ticket_id: str, decision: dict,
                    idempotency_key: str | None = None) -> TicketStatus:
    """Delivers an engineer's decision to a ticket that is waiting for one.

    One decision per proposal revision: the first is recorded (insert-if-absent) and raised;
    a different one gets 409, so two engineers clicking at once cannot both decide. The same
    decision again (or the same Idempotency-Key) answers as the first did.
    """
    if idempotency_key:
        earlier = records.get_value(f"idempotency:{ticket_id}:{idempotency_key}")
        if earlier is not None:
            if earlier["decision"] != decision:
                raise TicketConflict("this Idempotency-Key was used for a different decision")
            wf.raise_workflow_event(ticket_id, APPROVAL_EVENT, data=earlier["event"])
            return get_status(wf, ticket_id)

    status = get_status(wf, ticket_id)
    if status.stage != "awaiting_approval":
        raise TicketConflict(f"ticket {ticket_id!r} is not waiting for a decision (stage: {status.stage})")
    revision = int(status.output.get("revision", 0))
    event_data = {**decision, "revision": revision, "decided_at": datetime.now(timezone.utc).isoformat()}
    inserted, stored = records.insert_if_absent(f"decision:{ticket_id}:{revision}", event_data)
    if not inserted and any(stored.get(k) != event_data.get(k) for k in decision):
        raise TicketConflict(f"ticket {ticket_id!r} already has a decision for revision {revision}")
    if idempotency_key:
        records.insert_if_absent(f"idempotency:{ticket_id}:{idempotency_key}",
                                 {"decision": decision, "event": stored})
    approved = bool(stored["approved"])
    record_events(records, ticket_id, [event(
        f"decision:{revision}", "decision", stored["approver"], approved=approved, revision=revision,
        support_notes=stored.get("support_notes"), final_solution=stored.get("final_solution"))],
        awaiting_decision=False, stage="notifying" if approved else "expert_analysis",
        decision={"approved": approved, "approver": stored["approver"], "revision": revision})
    # Raised again when the same decision is repeated: a crash may have come between the record
    # and the raise. The workflow applies one decision per revision and drops the rest.
    wf.raise_workflow_event(ticket_id, APPROVAL_EVENT, data=stored)
    return status


def cancel_ticket(wf: DaprWorkflowClient, records: StateStore, ticket_id: str, by: str,
                  reason: str | None) -> TicketStatus:
    """Asks the workflow to end: it tells the customer and finishes as `cancelled`."""
    status = get_status(wf, ticket_id)
    if status.stage in FINAL_STAGES:
        raise TicketConflict(f"ticket {ticket_id!r} is already finished (stage: {status.stage})")
    request = {"by": by, "reason": reason, "requested_at": datetime.now(timezone.utc).isoformat()}
    record_events(records, ticket_id, [event("cancel_requested", "cancel_requested", by, reason=reason)])
    wf.raise_workflow_event(ticket_id, CANCEL_EVENT, data=request)
    return status
