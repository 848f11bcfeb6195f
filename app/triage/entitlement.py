"""Entitlement and first-response SLA, from the customer's plan alone (triage rubric).

Never from model prose: an agent may summarise a ticket, it never decides what a customer is
owed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.triage import Sla


@dataclass(frozen=True)
class Target:
    amount: int
    unit: str  # "h" (wall-clock hours) or "business day"

    def label(self) -> str:
        if self.unit == "h":
            return f"{self.amount} h"
        return f"{self.amount} business day{'s' if self.amount > 1 else ''}"

    def due(self, start: datetime) -> datetime:
        if self.unit == "h":
            return start + timedelta(hours=self.amount)
        return add_business_days(start, self.amount)


_H = lambda n: Target(n, "h")  # noqa: E731
_BD = lambda n: Target(n, "business day")  # noqa: E731

# plan -> priority -> first response target (triage-rubric.md)
SLA_TARGETS: dict[str, dict[str, Target]] = {
    "enterprise": {"critical": _H(1), "high": _H(4), "medium": _BD(1), "low": _BD(2)},
    "professional": {"critical": _H(4), "high": _H(8), "medium": _BD(2), "low": _BD(3)},
}
NOT_ENTITLED_PLANS = {"basic"}


@dataclass(frozen=True)
class Entitlement:
    entitled: bool
    reason: str
    sla: Sla | None


def add_business_days(start: datetime, days: int) -> datetime:
    """Counts whole weekdays forward, keeping the time of day; weekends are skipped."""
    current = start
    while current.weekday() >= 5:  # filed at a weekend: the clock starts Monday, same time
        current += timedelta(days=1)
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


def decide_entitlement(plan: str | None, priority: str, filed_at: datetime,
                       override_seconds: float | None = None) -> Entitlement:
    if plan is None:
        return Entitlement(False, "unknown customer: no support plan on record", None)
    if plan in NOT_ENTITLED_PLANS:
        return Entitlement(False, f"the {plan} plan does not include support tickets", None)
    targets = SLA_TARGETS.get(plan)
    if targets is None:
        return Entitlement(False, f"unrecognised support plan {plan!r}", None)
    target = targets[priority]
    if override_seconds is not None:  # SLA_OVERRIDE, for drills and tests
        due = filed_at + timedelta(seconds=override_seconds)
        sla = Sla(first_response_target=f"{override_seconds:g} s (override)", first_response_due=due.isoformat())
    else:
        sla = Sla(first_response_target=target.label(), first_response_due=target.due(filed_at).isoformat())
    return Entitlement(True, f"{plan} plan includes support", sla)
