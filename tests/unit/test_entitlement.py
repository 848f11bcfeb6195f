"""Entitlement and SLA come from the plan alone (triage rubric)."""

from datetime import datetime, timezone

import pytest

from app.core.config import parse_duration
from app.triage.entitlement import add_business_days, decide_entitlement

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
FRIDAY_16 = datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("plan, priority, target, due", [
    ("enterprise", "critical", "1 h", datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc)),
    ("enterprise", "high", "4 h", datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)),
    ("enterprise", "medium", "1 business day", datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)),
    ("enterprise", "low", "2 business days", datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)),
    ("professional", "critical", "4 h", datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)),
    ("professional", "high", "8 h", datetime(2026, 11, 23, 18, 0, tzinfo=timezone.utc)),
    ("professional", "medium", "2 business days", datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)),
    ("professional", "low", "3 business days", datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)),
])
def test_entitled_plans_get_the_rubric_targets(plan, priority, target, due):
    decision = decide_entitlement(plan, priority, MONDAY_10)
    assert decision.entitled
    assert decision.sla.first_response_target == target
    assert datetime.fromisoformat(decision.sla.first_response_due) == due


@pytest.mark.parametrize("plan", ["basic", None, "platinum"])
def test_basic_unknown_and_unrecognised_plans_are_not_entitled(plan):
    decision = decide_entitlement(plan, "critical", MONDAY_10)
    assert not decision.entitled and decision.sla is None and decision.reason


def test_business_days_skip_weekends():
    assert add_business_days(FRIDAY_16, 1) == datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)
    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
    assert add_business_days(saturday, 1) == datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def test_override_replaces_every_target():
    decision = decide_entitlement("professional", "low", MONDAY_10, override_seconds=5)
    assert decision.sla.first_response_target == "5 s (override)"
    assert (datetime.fromisoformat(decision.sla.first_response_due) - MONDAY_10).total_seconds() == 5


@pytest.mark.parametrize("text, seconds", [("24h", 86400), ("90s", 90), ("15m", 900), ("1.5d", 129600),
                                           ("250ms", 0.25), ("30", 30), (12, 12)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "0"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_an_sla_drill_scoped_to_customers_leaves_the_others_on_their_plan():
    from app.core.config import Settings

    drill = Settings(sla_override="8s", sla_override_customers="DRILL-1, DRILL-2")
    assert (drill.sla_override_for("DRILL-2"), drill.sla_override_for("CUST001")) == (8.0, None)
    assert Settings(sla_override="8s").sla_override_for("CUST001") == 8.0
    assert Settings().sla_override_for("DRILL-1") is None
