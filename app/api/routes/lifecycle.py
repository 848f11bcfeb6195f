"""Support staff's views and actions on tickets: list, timeline, cancel. The list and the
timeline read the read model (what the workflows recorded, corrected by its sweep from the
runtime); the timeline adds what the runtime says of the instance now."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.auth import CanCancel, CanInspect
from app.api.deps import ReadyReadModelDep, RecordsDep, WorkflowsDep
from app.api.errors import responses
from app.domain.status import Stage
from app.domain.ticket import TICKET_ID_PATTERN
from app.readmodel.store import CURSOR_PATTERN
from app.services import operations, tickets

router = APIRouter(prefix="/support/tickets", tags=["lifecycle"])


class TicketSummary(BaseModel):
    ticket_id: str
    status: str = Field(description="the workflow's runtime status")
    customer_id: str | None = None
    stage: str | None = None
    priority: str | None = None
    category: str | None = None
    plan: str | None = None
    filed_at: str | None = None
    awaiting_decision: bool | None = None
    escalated: bool | None = None
    revision: int | None = None
    sla_due: str | None = None
    awaiting_since: str | None = None
    escalations: list[str] = Field(default_factory=list)
    confidence: float | None = None
    workflow_version: str | None = None
    description: str | None = None
    updated_at: str | None = None


class TicketPage(BaseModel):
    tickets: list[TicketSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at the end")


class TimelineEvent(BaseModel):
    kind: str
    actor: str
    at: str
    details: dict


class Timeline(BaseModel):
    ticket_id: str
    events: list[TimelineEvent]


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)


class CancelAccepted(BaseModel):
    status: str = "cancel_requested"
    ticket_id: str
    instance_id: str


@router.get("", response_model=TicketPage, responses=responses(401, 403, 422))
def list_tickets(_: CanInspect, read_model: ReadyReadModelDep,
                 status_: Literal["running", "completed", "failed", "terminated", "suspended"] | None = Query(None, alias="status"),
                 stage: Stage | None = None,
                 priority: Literal["critical", "high", "medium", "low"] | None = None,
                 customer_id: str | None = Query(None, pattern=r"^[A-Za-z0-9_-]{1,64}$"),
                 awaiting_decision: bool | None = None,
                 escalated: bool | None = None,
                 workflow_version: str | None = Query(None, pattern=r"^[A-Za-z0-9_.-]{1,32}$",
                                                      description="the ticket workflow's version"),
                 q: str | None = Query(None, max_length=200, description="words of the ticket id or description"),
                 limit: int = Query(20, ge=1, le=200),
                 cursor: str | None = Query(None, pattern=CURSOR_PATTERN,
                                            description="the next_cursor of the previous page")) -> TicketPage:
    filters = {k: v for k, v in {"stage": stage, "priority": priority, "customer_id": customer_id,
                                 "awaiting_decision": awaiting_decision, "escalated": escalated,
                                 "status": status_, "workflow_version": workflow_version}.items() if v is not None}
    # The read model alone: its sweep (app/readmodel/sync.py) keeps it in step with the runtime.
    page, next_cursor = read_model.list(filters, limit, cursor, text=q)
    return TicketPage(tickets=[TicketSummary.model_validate(row) for row in page], next_cursor=next_cursor)


@router.get("/{ticket_id}/timeline", response_model=Timeline, responses=responses(401, 403, 404, 422))
def timeline(_: CanInspect, workflows: WorkflowsDep, read_model: ReadyReadModelDep, records: RecordsDep,
             ticket_id: str = Path(pattern=TICKET_ID_PATTERN)) -> Timeline:
    instance = tickets.ticket_instance(workflows, ticket_id)  # 404 for an unknown ticket
    events = read_model.events(ticket_id)
    if instance.runtime_status in ("failed", "terminated", "suspended"):
        # Told by the runtime, not the workflow: it cannot record these itself.
        events.append({"key": instance.runtime_status, "kind": instance.runtime_status, "actor": "runtime",
                       "at": instance.last_updated_at or "", "details": {"failure": instance.failure}
                       if instance.failure else {}})
    # Operators' actions and engineers' claims, recorded outside the workflow (audit log).
    events = operations.merge_timeline(events, operations.audit_timeline_events(records, ticket_id))
    return Timeline(ticket_id=ticket_id, events=[TimelineEvent.model_validate(e) for e in events])


@router.post("/{ticket_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=CancelAccepted,
             responses=responses(400, 401, 403, 404, 409, 422))
def cancel(principal: CanCancel, workflows: WorkflowsDep, ticket_id: str = Path(pattern=TICKET_ID_PATTERN),
           body: CancelRequest | None = Body(None)) -> CancelAccepted:
    current = tickets.cancel_ticket(workflows, ticket_id, principal.name, body.reason if body else None)
    return CancelAccepted(ticket_id=ticket_id, instance_id=current.instance_id)
