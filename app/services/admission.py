"""Admission control: bounds on the tickets the pipeline is working on, so an overload is
answered at once with 503 and Retry-After instead of queueing in the sidecar and turning into
seconds of latency for everyone.

Two gates, one per half of the pipeline. Filing: a ticket counts from the moment it is admitted
until the workflow records it waiting for a decision or finished. Deciding: a decided ticket
counts until the workflow records it finished, or waiting again on a later revision (a
rejection's new proposal); each decision's notify, delivery and case steps are the other half
of a ticket's work, and decisions arriving faster than the pipeline completes them would queue
as filings would. What is recorded is read from the read model, which the workflow writes; the
gates write nothing. The count is per process: with replicas the bound grows with them, as
capacity does. When at the bound, a gate asks the read model which admitted tickets have
settled, at most every `refresh_interval`. A ticket that has not settled after `max_age`
(stuck, or its workflow gone) stops counting: the stuck listing and the console own it, not
admission control.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable, Protocol

from app.services.tickets import TicketError
from app.workflows.contracts import FINAL_STAGES

# Where a ticket stops taking the pipeline's time until someone decides.
SETTLED_STAGES = frozenset({"awaiting_approval"}) | FINAL_STAGES


class Overloaded(TicketError):
    status_code = 503

    def __init__(self, active: int, limit: int, retry_after: int, working_on: str):
        super().__init__(f"the service is at capacity ({active} tickets in {working_on}, limit {limit}); "
                         f"retry after {retry_after} s")
        self.retry_after = retry_after


class PositionSource(Protocol):
    def positions(self, ticket_ids: list[str]) -> dict[str, tuple[str | None, int]]:
        """{ticket id: (recorded stage, revision)}"""


RATE_WINDOW = 10.0


class AdmissionGate:
    def __init__(self, limit: int, positions: PositionSource, *, working_on: str = "triage or analysis",
                 refresh_interval: float = 0.25, max_age: float = 600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.working_on = working_on
        self._positions = positions
        self._refresh_interval = refresh_interval
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        # ticket id -> (admitted at, the revision after which waiting again means settled)
        self._admitted: dict[str, tuple[float, int]] = {}
        self._refreshed_at = -math.inf
        # When admitted tickets settled, over the last RATE_WINDOW s: Retry-After comes from it.
        self._settled_at: deque[float] = deque()
        self.shed = 0

    @property
    def active(self) -> int:
        return len(self._admitted)

    def admit(self, ticket_id: str, decided_revision: int = -1) -> None:
        """Reserves a place for `ticket_id`, or raises Overloaded. A limit of 0 admits all. For a
        decision, `decided_revision` is the revision decided: until the ticket waits on a later
        one, its waiting does not settle it."""
        if self.limit <= 0:
            return
        with self._lock:
            if ticket_id in self._admitted:
                return
            if len(self._admitted) >= self.limit:
                self._refresh()
            if len(self._admitted) >= self.limit:
                self.shed += 1
                raise Overloaded(len(self._admitted), self.limit, self._retry_after(), self.working_on)
            self._admitted[ticket_id] = (self._clock(), decided_revision)

    def release(self, ticket_id: str) -> None:
        """The request started no work (a filing refused or repeated, a decision refused or
        failed): its place is free."""
        with self._lock:
            self._admitted.pop(ticket_id, None)

    def _refresh(self) -> None:
        now = self._clock()
        if now - self._refreshed_at < self._refresh_interval:
            return
        self._refreshed_at = now
        for ticket_id, (at, _) in list(self._admitted.items()):
            if now - at > self._max_age:
                del self._admitted[ticket_id]
        positions = self._positions.positions(list(self._admitted))
        for ticket_id, (stage, revision) in positions.items():
            if _settled(stage, revision, decided_revision=self._admitted[ticket_id][1]):
                del self._admitted[ticket_id]
                self._settled_at.append(now)

    def _retry_after(self) -> int:
        """About how long until a place frees, at the rate places freed lately (1..30 s; 2 s
        when none freed in the window)."""
        now = self._clock()
        while self._settled_at and now - self._settled_at[0] > RATE_WINDOW:
            self._settled_at.popleft()
        if not self._settled_at:
            return 2
        rate = len(self._settled_at) / RATE_WINDOW
        return max(1, min(30, math.ceil(1 / rate)))


def _settled(stage: str | None, revision: int, decided_revision: int) -> bool:
    if stage in FINAL_STAGES:
        return True
    return stage in SETTLED_STAGES and revision > decided_revision
