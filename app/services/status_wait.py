"""Waiting for a ticket's status to change: `GET /support/status/{id}?wait=N` with the
`If-None-Match` of the status the caller has.

A caller that waits for a stage (a support tool showing "analysing...", a script waiting for a
proposal) would otherwise poll: every poll is a request through the API and a read of the
workflow through the sidecar, most of them answering what the caller already knows. Here the
caller asks once; the app watches the read model's change marker for the ticket (a local
indexed read, no sidecar call) and reads the workflow again only when the marker moves, and
then once in a while, because the workflow records its last transition just before it
completes (the read model can move before the workflow's own status does).

The ETag is weak: it covers what the status says, not the fields that move with the clock
(`waiting_seconds`) or with every step the runtime takes (`last_updated_at`).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Awaitable, Callable, TypeVar

import anyio
from pydantic import BaseModel

# Fields left out of the ETag: they change without the status changing.
MOVING_FIELDS = frozenset({"waiting_seconds", "last_updated_at"})
# How often the read model's marker is looked at while waiting.
CHECK_INTERVAL = 0.1
# After the marker moves, the workflow is read again after 0.1, 0.2, 0.4, ... s, at least
# every REREAD_MAX s, until the status changes.
REREAD_MAX = 1.0

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


async def wait_for_change(read_status: Callable[[], Awaitable[Status]], marker: Callable[[], Awaitable[str]],
                          etag: str, wait: float, *, clock: Callable[[], float] = time.monotonic,
                          check_interval: float = CHECK_INTERVAL) -> Status | None:
    """The status once its ETag is no longer `etag`, or None when `wait` seconds pass first."""
    deadline = clock() + wait
    last_marker = await marker()
    backoff = REREAD_MAX
    next_read = clock() + backoff
    while clock() < deadline:
        await anyio.sleep(min(check_interval, max(0.0, deadline - clock())))
        current_marker = await marker()
        if current_marker != last_marker:
            last_marker, backoff = current_marker, 0.0
            next_read = clock()
        if clock() >= next_read:
            status = await read_status()
            if status_etag(status) != etag:
                return status
            backoff = min(max(backoff * 2, check_interval), REREAD_MAX)
            next_read = clock() + backoff
    return None
