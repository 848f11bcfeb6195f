"""GET /support/status/{ticket_id} — where a ticket is, as its workflow recorded it."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated, Union

import anyio
from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import Field

from app.api.auth import CanRead
from app.api.deps import ReadModelDep, RecordsDep, TicketChangesDep, WorkflowsDep
from app.api.errors import responses
from app.api.scope import can_read, sees_full_status
from app.domain.client_status import ClientTicketStatus, to_client_status
from app.domain.status import TicketStatus
from app.domain.ticket import TICKET_ID_PATTERN
from app.services import tickets
from app.services.status_wait import matches, status_etag, wait_for_change

router = APIRouter(prefix="/support", tags=["tickets"])


# Support staff get the full status (view "staff"); clients the client view (view "client").
StatusView = Annotated[Union[TicketStatus, ClientTicketStatus], Field(discriminator="view")]


@router.get("/status/{ticket_id}", response_model=StatusView,
            responses={304: {"description": "`If-None-Match` names the status as it is (after `wait` s, "
                                            "when given, with no change)"},
                       **responses(401, 403, 404, 422)})
async def ticket_status(response: Response, workflows: WorkflowsDep, records: RecordsDep, read_model: ReadModelDep,
                        changes: TicketChangesDep,
                        principal: CanRead, ticket_id: str = Path(pattern=TICKET_ID_PATTERN),
                        wait: float = Query(0, ge=0, le=60, description="with If-None-Match: wait up to this many "
                                            "seconds for the status to change instead of answering 304 at once"),
                        if_none_match: Annotated[str | None, Header(max_length=200)] = None,
                        ) -> TicketStatus | ClientTicketStatus | Response:
    """The status carries a weak ETag. Sent back as If-None-Match with `wait`, the answer comes
    when the status changes (or 304 after `wait` s): a caller waiting for a stage asks once
    instead of polling (app/services/status_wait.py)."""

    def read() -> TicketStatus | ClientTicketStatus:
        # Clients read the tickets they filed for customers they may act for; staff read all. The
        # read model stands in only for a STALLED instance, which the runtime answers without its
        # custom status.
        status = tickets.get_status(workflows, records, ticket_id, may_read=lambda customer_id, filed_by:
                                    can_read(principal, customer_id, filed_by), read_model=read_model)
        return status if sees_full_status(principal) else to_client_status(status)

    # A caller that waits is watched from before the read: a change right after it is not missed.
    async with changes.watch(ticket_id) if wait and if_none_match else nullcontext() as watch:
        status = await anyio.to_thread.run_sync(read)
        etag = status_etag(status)
        if matches(if_none_match, etag):
            changed = None
            if watch is not None:
                changed = await wait_for_change(lambda: anyio.to_thread.run_sync(read), watch.moved_async, etag, wait)
            if changed is None:
                return Response(status_code=304, headers={"ETag": etag})
            status, etag = changed, status_etag(changed)
    response.headers["ETag"] = etag
    return status
