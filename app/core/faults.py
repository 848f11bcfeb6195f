"""Deterministic fault injection for tests and drills: `FAULT_INJECTION=activity@ticket-prefix,...`
makes that activity fail on every attempt for tickets whose id starts with the prefix (no
prefix: every ticket). `activity@prefix:hang` makes it hang instead (no result, no failure, until
the app stops or MAX_HANG_SECONDS pass): a genuinely stuck instance, for the stuck detection and
the operator's terminate drill. `activity@prefix:unreachable` fails it as a dependency that
cannot be reached (`DependencyUnavailable`: the workflow waits such an outage out), as a broker
or store outage would, without stopping one.

A failing mode takes two limits: `*N`, only the first N attempts of each ticket fail (an outage
that passes), and `~S`, each failing attempt takes S seconds first (a dependency that times out):
`propose_solution@T-:unreachable*5~4`. Unset in production; the start-up log says when it is set."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Literal, get_args

from app.core.unreachable import DependencyUnavailable

# A hung attempt ends by itself after this long (failing), so no thread hangs forever.
MAX_HANG_SECONDS = 3600.0

Mode = Literal["fail", "hang", "unreachable"]
_MODE = re.compile(r"^(?P<mode>[a-z]*)(?:\*(?P<attempts>\d+))?(?:~(?P<hold>\d+(?:\.\d+)?))?$")


class InjectedFault(RuntimeError):
    """A failure asked for by FAULT_INJECTION."""


@dataclass(frozen=True)
class FaultRule:
    activity: str
    prefix: str
    mode: Mode = "fail"
    attempts: int | None = None  # only the first N attempts of each ticket fail
    hold_s: float = 0.0  # each failing attempt takes this long first

    def __str__(self) -> str:
        limits = (f"*{self.attempts}" if self.attempts is not None else "") + (f"~{self.hold_s:g}" if self.hold_s else "")
        return f"{self.activity}@{self.prefix}:{self.mode}{limits}"


@dataclass(frozen=True)
class FaultPlan:
    rules: tuple[FaultRule, ...] = field(default_factory=tuple)
    # Set at shutdown: hung attempts return (failing) so the worker can stop.
    released: threading.Event = field(default_factory=threading.Event, compare=False)
    # Attempts seen per (rule, ticket), for the `*N` limit.
    _seen: dict = field(default_factory=dict, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    @classmethod
    def parse(cls, spec: str | None) -> "FaultPlan":
        rules = []
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            activity, _, target = item.partition("@")
            prefix, _, mode = target.partition(":")
            parsed = _MODE.match(mode.strip())
            name = (parsed.group("mode") if parsed else mode.strip()) or "fail"
            if parsed is None or name not in get_args(Mode):
                raise ValueError(f"FAULT_INJECTION: unknown mode {mode.strip()!r} in {item!r} "
                                 "(fail, hang or unreachable, with *N attempts and ~S seconds)")
            attempts = int(parsed.group("attempts")) if parsed.group("attempts") else None
            rules.append(FaultRule(activity.strip(), prefix.strip(), name, attempts,
                                   float(parsed.group("hold") or 0)))
        return cls(tuple(rules))

    def check(self, activity: str, ticket_id: str | None) -> None:
        for rule in self.rules:
            if rule.activity != activity or not (ticket_id or "").startswith(rule.prefix):
                continue
            if rule.mode == "hang":
                self.released.wait(MAX_HANG_SECONDS)
                raise InjectedFault(f"injected hang in {activity} ended (FAULT_INJECTION)")
            with self._lock:
                attempt = self._seen[(rule, ticket_id)] = self._seen.get((rule, ticket_id), 0) + 1
            if rule.attempts is not None and attempt > rule.attempts:
                continue
            if rule.hold_s:
                self.released.wait(rule.hold_s)
            if rule.mode == "unreachable":
                raise DependencyUnavailable(f"injected: a dependency of {activity} cannot be reached (FAULT_INJECTION)")
            raise InjectedFault(f"injected fault in {activity} (FAULT_INJECTION)")

    def release(self) -> None:
        self.released.set()

    def __bool__(self) -> bool:
        return bool(self.rules)
