"""GET /support/status/{ticket_id} — where a ticket is."""

from __future__ import annotations

from fastapi import APIRouter, Path

from app.api.deps import WorkflowClientDep
from app.api.errors import responses
from app.domain.status import TicketStatus
from app.domain.ticket import TICKET_ID_PATTERN
from app.services import tickets

router = APIRouter(prefix="/support", tags=["tickets"])


@router.get("/status/{ticket_id}", response_model=TicketStatus, responses=responses(404, 422))
def ticket_status(wf: WorkflowClientDep, ticket_id: str = Path(pattern=TICKET_ID_PATTERN)) -> TicketStatus:
    return tickets.get_status(wf, ticket_id)
