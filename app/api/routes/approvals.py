"""POST /support/approve/{ticket_id} — an engineer's decision on the proposed solution."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, status

from app.api.auth import CanDecide
from app.api.deps import DecisionAdmissionDep, RecordsDep, SettingsDep, TicketChangesDep, WorkflowsDep
from app.api.errors import responses
from app.domain.decision import DecisionAccepted, DecisionRequest
from app.domain.ticket import TICKET_ID_PATTERN
from app.services import tickets

router = APIRouter(prefix="/support", tags=["decisions"])


@router.post("/approve/{ticket_id}", status_code=status.HTTP_202_ACCEPTED,
             response_model=DecisionAccepted, responses=responses(400, 401, 403, 404, 409, 422))
def decide(body: DecisionRequest, workflows: WorkflowsDep, records: RecordsDep, settings: SettingsDep,
           admission: DecisionAdmissionDep, changes: TicketChangesDep, principal: CanDecide,
           ticket_id: str = Path(pattern=TICKET_ID_PATTERN),
           idempotency_key: Annotated[str | None, Header(max_length=200, pattern=r"^[\x21-\x7e]+$",
                                                         description="makes a retried decision a no-op")] = None,
           ) -> DecisionAccepted:
    """Answers once the workflow has accepted the decision (`accepted`), or 409 with its reason
    when it refused it (another revision waits, the ticket moved on), or 503 with Retry-After
    when MAX_ACTIVE_DECISIONS decided tickets are still being notified."""
    return tickets.submit_decision(workflows, records, settings, ticket_id, body, principal.name, changes,
                                   idempotency_key=idempotency_key, admission=admission)
