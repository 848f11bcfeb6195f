"""Waiting for a ticket's status to change: `GET /support/status/{id}?wait=N` with the
`If-None-Match` of the status the caller has.

A caller that waits for a stage (a support tool showing "analysing...", a script waiting for a
proposal) would otherwise poll: every poll is a request through the API and a read of the
workflow through the sidecar, most of them answering what the caller already knows. Here the
caller asks once; the app watches the read model's change marker for the ticket (one local
indexed read for every waiter at once, no sidecar call: app/readmodel/ticket_changes.py) and
reads the workflow again when the marker moves, then a few times more as it backs off, because
the workflow records its last transition just before it completes (the read model can move
before the workflow's own status does). Every writer of the row moves the marker (the
workflow's records, the sweep's runtime statuses, a purge), so with no move the workflow is
read again only every IDLE_REREAD s, as a backstop.

The ETag is weak: it covers what the status says, not the fields that move with the clock
(`waiting_seconds`) or with every step the runtime takes (`last_updated_at`).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Awaitable, Callable, TypeVar

from pydantic import BaseModel

# Fields left out of the ETag: they change without the status changing.
MOVING_FIELDS = frozenset({"waiting_seconds", "last_updated_at"})
# After the marker moves, the workflow is read at once, then again after 0.1, 0.2, 0.4, ... s,
# at least every REREAD_MAX s, until the status changes.
FIRST_REREAD = 0.1
REREAD_MAX = 1.0
# With no move, how often the workflow is read anyway (1 s before session 17: a read through the
# sidecar per waiter per second, most of the status reads the runtime served).
IDLE_REREAD = 5.0

Status = TypeVar("Status", bound=BaseModel)


def status_etag(status: BaseModel) -> str:
    body = status.model_dump(mode="json", exclude=set(MOVING_FIELDS) & set(type(status).model_fields))
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f'W/"{digest[:24]}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match names this ETag; weak comparison, as RFC 9110 asks for it. `*` is not
    taken: a wait is for a status the caller has seen."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag.removeprefix("W/") in tags


async def wait_for_change(read_status: Callable[[], Awaitable[Status]], moved: Callable[[float], Awaitable[bool]],
                          etag: str, wait: float, *, clock: Callable[[], float] = time.monotonic) -> Status | None:
    """The status once its ETag is no longer `etag`, or None when `wait` seconds pass first.
    `moved(timeout)` answers, within `timeout` s, whether the ticket's marker moved."""
    deadline = clock() + wait
    backoff = IDLE_REREAD
    next_read = clock() + backoff
    while (now := clock()) < deadline:
        if await moved(max(0.0, min(next_read, deadline) - now)):
            backoff, next_read = 0.0, clock()
        if clock() >= next_read:
            status = await read_status()
            if status_etag(status) != etag:
                return status
            # Idle: every IDLE_REREAD s; after a move: 0.1, 0.2, ... up to REREAD_MAX.
            backoff = IDLE_REREAD if backoff >= IDLE_REREAD else min(max(backoff * 2, FIRST_REREAD), REREAD_MAX)
            next_read = clock() + backoff
    return None
