"""Support staff's views and actions on tickets: list, timeline, cancel."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.auth import CanCancel, CanInspect
from app.api.deps import WorkflowClientDep
from app.api.errors import responses
from app.core import clients
from app.domain.status import Stage
from app.domain.ticket import TICKET_ID_PATTERN
from app.services import index_rebuild, ticket_records, tickets

router = APIRouter(prefix="/support/tickets", tags=["lifecycle"])


class TicketSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    ticket_id: str
    customer_id: str | None = None
    stage: str | None = None
    priority: str | None = None
    filed_at: str | None = None
    awaiting_decision: bool = False


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
def list_tickets(_: CanInspect, wf: WorkflowClientDep,
                 status_: Literal["running", "completed", "failed", "terminated"] | None = Query(None, alias="status"),
                 stage: Stage | None = None,
                 priority: Literal["critical", "high", "medium", "low"] | None = None,
                 customer_id: str | None = Query(None, pattern=r"^[A-Za-z0-9_-]{1,64}$"),
                 awaiting_decision: bool | None = None,
                 limit: int = Query(20, ge=1, le=200),
                 cursor: str | None = Query(None, pattern=TICKET_ID_PATTERN)) -> TicketPage:
    filters = {k: v for k, v in {"stage": stage, "priority": priority, "customer_id": customer_id,
                                 "awaiting_decision": awaiting_decision}.items() if v is not None}
    if status_ is not None:
        filters["status"] = status_
    records = clients.analysis_store()
    if records.get_value(ticket_records.INDEX_KEY) is None:  # lost (or nothing filed yet)
        index_rebuild.rebuild_index(wf, records)
    page, next_cursor = ticket_records.list_summaries(records, filters, limit, cursor)
    return TicketPage(tickets=[TicketSummary.model_validate(s) for s in page], next_cursor=next_cursor)


@router.get("/{ticket_id}/timeline", response_model=Timeline, responses=responses(401, 403, 404, 422))
def timeline(_: CanInspect, wf: WorkflowClientDep,
             ticket_id: str = Path(pattern=TICKET_ID_PATTERN)) -> Timeline:
    tickets.get_status(wf, ticket_id)  # 404 for an unknown ticket
    events = ticket_records.get_timeline(clients.analysis_store(), ticket_id)
    return Timeline(ticket_id=ticket_id, events=[TimelineEvent.model_validate(e) for e in events])


@router.post("/{ticket_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=CancelAccepted,
             responses=responses(400, 401, 403, 404, 409, 422))
def cancel(principal: CanCancel, wf: WorkflowClientDep, ticket_id: str = Path(pattern=TICKET_ID_PATTERN),
           body: CancelRequest | None = Body(None)) -> CancelAccepted:
    current = tickets.cancel_ticket(wf, clients.analysis_store(), ticket_id, principal.name,
                                    body.reason if body else None)
    return CancelAccepted(ticket_id=ticket_id, instance_id=current.instance_id)
