"""GET /support/status/{ticket_id} — where a ticket is, as its workflow recorded it."""

from __future__ import annotations

from typing import Annotated, Union

from fastapi import APIRouter, Path
from pydantic import Field

from app.api.auth import CanRead
from app.api.deps import ReadModelDep, RecordsDep, WorkflowsDep
from app.api.errors import responses
from app.api.scope import can_read, sees_full_status
from app.domain.client_status import ClientTicketStatus, to_client_status
from app.domain.status import TicketStatus
from app.domain.ticket import TICKET_ID_PATTERN
from app.services import tickets

router = APIRouter(prefix="/support", tags=["tickets"])


# Support staff get the full status (view "staff"); clients the client view (view "client").
StatusView = Annotated[Union[TicketStatus, ClientTicketStatus], Field(discriminator="view")]


@router.get("/status/{ticket_id}", response_model=StatusView, responses=responses(401, 403, 404, 422))
def ticket_status(workflows: WorkflowsDep, records: RecordsDep, read_model: ReadModelDep, principal: CanRead,
                  ticket_id: str = Path(pattern=TICKET_ID_PATTERN)) -> TicketStatus | ClientTicketStatus:
    # Clients read the tickets they filed for customers they may act for; staff read all. The
    # read model stands in only for a STALLED instance, which the runtime answers without its
    # custom status.
    status = tickets.get_status(workflows, records, ticket_id, may_read=lambda customer_id, filed_by:
                                can_read(principal, customer_id, filed_by), read_model=read_model)
    return status if sees_full_status(principal) else to_client_status(status)
