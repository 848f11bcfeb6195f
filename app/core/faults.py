"""Deterministic fault injection for tests and drills: `FAULT_INJECTION=activity@ticket-prefix,...`
makes that activity fail on every attempt for tickets whose id starts with the prefix (no
prefix: every ticket). `activity@prefix:hang` makes it hang instead (no result, no failure, until
the app stops or MAX_HANG_SECONDS pass): a genuinely stuck instance, for the stuck detection and
the operator's terminate drill. Unset in production; the start-up log says when it is set."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

# A hung attempt ends by itself after this long (failing), so no thread hangs forever.
MAX_HANG_SECONDS = 3600.0

Mode = Literal["fail", "hang"]


class InjectedFault(RuntimeError):
    """A failure asked for by FAULT_INJECTION."""


@dataclass(frozen=True)
class FaultPlan:
    # (activity, ticket-id prefix, mode)
    rules: tuple[tuple[str, str, Mode], ...] = field(default_factory=tuple)
    # Set at shutdown: hung attempts return (failing) so the worker can stop.
    released: threading.Event = field(default_factory=threading.Event, compare=False)

    @classmethod
    def parse(cls, spec: str | None) -> "FaultPlan":
        rules = []
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            activity, _, target = item.partition("@")
            prefix, _, mode = target.partition(":")
            mode = mode.strip() or "fail"
            if mode not in ("fail", "hang"):
                raise ValueError(f"FAULT_INJECTION: unknown mode {mode!r} in {item!r} (fail or hang)")
            rules.append((activity.strip(), prefix.strip(), mode))
        return cls(tuple(rules))

    def check(self, activity: str, ticket_id: str | None) -> None:
        for name, prefix, mode in self.rules:
            if name == activity and (ticket_id or "").startswith(prefix):
                if mode == "hang":
                    self.released.wait(MAX_HANG_SECONDS)
                    raise InjectedFault(f"injected hang in {activity} ended (FAULT_INJECTION)")
                raise InjectedFault(f"injected fault in {activity} (FAULT_INJECTION)")

    def release(self) -> None:
        self.released.set()

    def __bool__(self) -> bool:
        return bool(self.rules)
