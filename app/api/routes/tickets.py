"""POST /support/ticket — file a ticket; starts its workflow."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.api.auth import CanFile
from app.api.deps import SettingsDep, WorkflowClientDep
from app.api.errors import responses
from app.core import clients
from app.domain.ticket import TicketAccepted, TicketRequest
from app.services import tickets

router = APIRouter(prefix="/support", tags=["tickets"])


@router.post("/ticket", status_code=status.HTTP_202_ACCEPTED, response_model=TicketAccepted,
             responses={200: {"model": TicketAccepted, "description": "the same ticket was already filed"},
                        **responses(400, 401, 403, 409, 422)})
def file_ticket(body: TicketRequest, response: Response, wf: WorkflowClientDep,
                settings: SettingsDep, principal: CanFile) -> TicketAccepted:
    created, instance_id = tickets.file_ticket(wf, clients.analysis_store(), clients.customer_store(),
                                               settings, body, filed_by=principal.name)
    if not created:
        response.status_code = status.HTTP_200_OK
    return TicketAccepted(instance_id=instance_id, ticket_id=body.ticket_id)
