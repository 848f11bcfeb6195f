"""Resolved cases: GET /support/cases (engineers and operators) and
POST /support/cases/{ticket_id}/retract (engineers): a retracted case is never cited again."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.auth import CanDecide, CanInspect
from app.api.deps import RecordsDep
from app.api.errors import responses
from app.domain.ticket import TICKET_ID_PATTERN
from app.knowledge.case_store import CaseNotFound, CaseStore, ResolvedCase

router = APIRouter(prefix="/support", tags=["cases"])


class CasePage(BaseModel):
    cases: list[ResolvedCase]
    next_after: str | None = Field(None, description="pass as `after` for the next page")


class RetractRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=500)


@router.get("/cases", response_model=CasePage, responses=responses(401, 403, 422))
def list_cases(records: RecordsDep, principal: CanInspect,
               after: str | None = Query(None, pattern=TICKET_ID_PATTERN, description="ticket id to continue after"),
               limit: int = Query(50, ge=1, le=200),
               include_retracted: bool = Query(True)) -> CasePage:
    """Cases by ticket id; the texts are already scrubbed of the customers' data."""
    store = CaseStore(records)
    ids = [i for i in store.shards()[0] if after is None or i > after]
    page: list[ResolvedCase] = []
    consumed = 0  # ids looked at: the next page starts after the last of them
    while consumed < len(ids) and len(page) < limit:
        batch = ids[consumed:consumed + limit]
        found = {case.ticket_id: case for case in store.get_many(batch)}
        for ticket_id in batch:
            consumed += 1
            case = found.get(ticket_id)
            if case is not None and (include_retracted or not case.retracted):
                page.append(case)
                if len(page) == limit:
                    break
    return CasePage(cases=page, next_after=ids[consumed - 1] if consumed < len(ids) else None)


@router.post("/cases/{ticket_id}/retract", response_model=ResolvedCase, responses=responses(400, 401, 403, 404, 422))
def retract_case(principal: CanDecide, records: RecordsDep, body: RetractRequest | None = None,
                 ticket_id: str = Path(pattern=TICKET_ID_PATTERN)) -> ResolvedCase:
    """Idempotent: retracting a retracted case answers it as it is."""
    try:
        return CaseStore(records).retract(ticket_id, by=principal.name, at=datetime.now(timezone.utc).isoformat(),
                                          reason=body.reason if body else None)
    except CaseNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"ticket {ticket_id} has no resolved case") from None
