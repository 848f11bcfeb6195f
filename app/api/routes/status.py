"""GET /support/status/{ticket_id} — where a ticket is."""

from __future__ import annotations

from fastapi import APIRouter, Path

from app.api.auth import CanRead
from app.api.deps import WorkflowClientDep
from app.api.errors import responses
from app.domain.status import TicketStatus
from app.domain.ticket import TICKET_ID_PATTERN
from app.services import tickets

router = APIRouter(prefix="/support", tags=["tickets"])


@router.get("/status/{ticket_id}", response_model=TicketStatus, responses=responses(401, 403, 404, 422))
def ticket_status(wf: WorkflowClientDep, principal: CanRead,
                  ticket_id: str = Path(pattern=TICKET_ID_PATTERN)) -> TicketStatus:
    # Clients see the tickets they filed; support staff see all.
    visible_to = principal.name if principal.role == "client" else None
    return tickets.get_status(wf, ticket_id, visible_to=visible_to)
