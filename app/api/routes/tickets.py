"""POST /support/ticket — file a ticket; starts its workflow."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.api.auth import CanFile
from app.api.deps import AdmissionDep, CustomersDep, SettingsDep, WorkflowsDep
from app.api.errors import responses
from app.api.scope import check_filing_scope
from app.domain.ticket import TicketAccepted, TicketRequest
from app.services import tickets

router = APIRouter(prefix="/support", tags=["tickets"])


@router.post("/ticket", status_code=status.HTTP_202_ACCEPTED, response_model=TicketAccepted,
             responses={200: {"model": TicketAccepted, "description": "the same ticket was already filed"},
                        **responses(400, 401, 403, 404, 409, 422)})
def file_ticket(body: TicketRequest, response: Response, workflows: WorkflowsDep, customers: CustomersDep,
                settings: SettingsDep, admission: AdmissionDep, principal: CanFile) -> TicketAccepted:
    # Before the customer is looked up: a scoped client learns nothing about other customers.
    check_filing_scope(principal, body.customer_id)
    # Before any sidecar call: beyond capacity a filing costs the sidecar nothing (503).
    admission.admit(body.ticket_id)
    created = False
    try:
        created, instance_id = tickets.file_ticket(workflows, customers, settings, body, filed_by=principal.name)
    finally:
        if not created:
            admission.release(body.ticket_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return TicketAccepted(instance_id=instance_id, ticket_id=body.ticket_id)
