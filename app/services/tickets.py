"""Ticket operations behind the REST routes: file, read status, deliver a decision.

Kept out of the routes so the rules (what conflicts, what is unknown) live in one place.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from dapr.ext.workflow import DaprWorkflowClient, WorkflowState, WorkflowStatus
from grpc import RpcError

from app.core.config import Settings
from app.domain.status import TicketStatus
from app.domain.ticket import TicketRequest, TicketWorkflowInput
from app.store import StateStore
from app.workflows.ticket_workflow import APPROVAL_EVENT, ticket_workflow


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
    return TicketStatus(ticket_id=ticket_id, instance_id=state.instance_id,
                        status=runtime.name.lower(), stage=stage, output=output,
                        created_at=_iso(state.created_at), last_updated_at=_iso(state.last_updated_at))


def get_status(wf: DaprWorkflowClient, ticket_id: str) -> TicketStatus:
    state = wf.get_workflow_state(ticket_id, fetch_payloads=True)
    if state is None:
        raise TicketNotFound(f"no ticket {ticket_id!r}")
    return to_status(ticket_id, state)


def _same_ticket(state: WorkflowState, request: TicketRequest) -> bool:
    filed = _json(state.serialized_input)
    return filed.get("customer_id") == request.customer_id and filed.get("description") == request.description


def file_ticket(wf: DaprWorkflowClient, customers: StateStore, settings: Settings,
                request: TicketRequest) -> tuple[bool, str]:
    """Starts the ticket's workflow; (created, instance_id). Filing the same ticket again is a
    no-op; the same id with other content is a conflict. A finished ticket is never restarted
    (Dapr would replace its history)."""
    existing = wf.get_workflow_state(request.ticket_id, fetch_payloads=True)
    if existing is not None:
        if _same_ticket(existing, request):
            return False, existing.instance_id
        raise TicketConflict(f"ticket {request.ticket_id!r} already exists with different content")
    if customers.get_value(request.customer_id) is None:
        raise UnknownCustomer(f"unknown customer_id {request.customer_id!r}")

    workflow_input = TicketWorkflowInput(
        ticket_id=request.ticket_id, customer_id=request.customer_id,
        description=request.description, filed_at=datetime.now(timezone.utc).isoformat(),
        approval_timeout_seconds=settings.approval_timeout, max_revisions=settings.max_revisions,
    )
    try:
        instance_id = wf.schedule_new_workflow(ticket_workflow, input=workflow_input.model_dump(),
                                               instance_id=request.ticket_id)
    except RpcError as error:
        # Lost a race with a concurrent filing of the same id: answer as for a repeat.
        existing = wf.get_workflow_state(request.ticket_id, fetch_payloads=True)
        if existing is None:
            raise
        if _same_ticket(existing, request):
            return False, existing.instance_id
        raise TicketConflict(f"ticket {request.ticket_id!r} already exists with different content") from error
    return True, instance_id


def submit_decision(wf: DaprWorkflowClient, decisions: StateStore, ticket_id: str,
                    decision: dict) -> TicketStatus:
    """Delivers an engineer's decision to a ticket that is waiting for one.

    One decision per proposal revision: the first is recorded (insert-if-absent) and raised,
    a second gets 409, so two engineers clicking at once cannot both decide.
    """
    status = get_status(wf, ticket_id)
    if status.stage != "awaiting_approval":
        raise TicketConflict(f"ticket {ticket_id!r} is not waiting for a decision (stage: {status.stage})")
    revision = int(status.output.get("revision", 0))
    event = {**decision, "revision": revision, "decided_at": datetime.now(timezone.utc).isoformat()}
    inserted, stored = decisions.insert_if_absent(f"decision:{ticket_id}:{revision}", event)
    if not inserted and any(stored.get(k) != event.get(k) for k in decision):
        raise TicketConflict(f"ticket {ticket_id!r} already has a decision for revision {revision}")
    # Raised again when the same decision is repeated: a crash may have come between the record
    # and the raise. The workflow applies one decision per revision and drops the rest.
    wf.raise_workflow_event(ticket_id, APPROVAL_EVENT, data=stored)
    return status
