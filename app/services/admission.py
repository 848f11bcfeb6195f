"""Admission control on filing: a bound on the tickets this process has filed that are still
being worked (triage and expert analysis), so an overload is answered at once with 503 and
Retry-After instead of queueing in the sidecar and turning into minutes of latency for everyone.

A ticket counts from the moment it is admitted until the workflow records it waiting for a
decision or finished (read from the read model, which the workflow writes; the gate writes
nothing). The count is per process: with replicas the bound grows with them, as capacity does.
When at the bound, the gate asks the read model which admitted tickets have settled, at most
every `refresh_interval`. A ticket that has not settled after `max_age` (stuck, or its workflow
gone) stops counting: the stuck listing and the console own it, not the admission gate.
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

    def __init__(self, active: int, limit: int, retry_after: int):
        super().__init__(f"the service is at capacity ({active} tickets in triage or analysis, limit {limit}); "
                         f"retry after {retry_after} s")
        self.retry_after = retry_after


class StageSource(Protocol):
    def stages(self, ticket_ids: list[str]) -> dict[str, str | None]: ...


RATE_WINDOW = 10.0


class AdmissionGate:
    def __init__(self, limit: int, stages: StageSource, *, refresh_interval: float = 0.25,
                 max_age: float = 600.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self._stages = stages
        self._refresh_interval = refresh_interval
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._admitted: dict[str, float] = {}
        self._refreshed_at = -math.inf
        # When admitted tickets settled, over the last RATE_WINDOW s: Retry-After comes from it.
        self._settled_at: deque[float] = deque()
        self.shed = 0

    @property
    def active(self) -> int:
        return len(self._admitted)

    def admit(self, ticket_id: str) -> None:
        """Reserves a place for `ticket_id`, or raises Overloaded. A limit of 0 admits all."""
        if self.limit <= 0:
            return
        with self._lock:
            if ticket_id in self._admitted:
                return
            if len(self._admitted) >= self.limit:
                self._refresh()
            if len(self._admitted) >= self.limit:
                self.shed += 1
                raise Overloaded(len(self._admitted), self.limit, self._retry_after())
            self._admitted[ticket_id] = self._clock()

    def release(self, ticket_id: str) -> None:
        """The filing did not start a workflow (refused, or a repeat): its place is free."""
        with self._lock:
            self._admitted.pop(ticket_id, None)

    def _refresh(self) -> None:
        now = self._clock()
        if now - self._refreshed_at < self._refresh_interval:
            return
        self._refreshed_at = now
        for ticket_id, at in list(self._admitted.items()):
            if now - at > self._max_age:
                del self._admitted[ticket_id]
        stages = self._stages.stages(list(self._admitted))
        for ticket_id, stage in stages.items():
            if stage in SETTLED_STAGES:
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
