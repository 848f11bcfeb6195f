"""FAULT_INJECTION rules: fail, or hang until released (app/core/faults.py)."""

from __future__ import annotations

import threading

import pytest

from app.core.faults import FaultPlan, InjectedFault


def test_rules_fail_by_prefix_and_hang_until_released():
    plan = FaultPlan.parse("notify_customer@T-, triage_ticket@STUCK-:hang")
    assert plan.rules == (("notify_customer", "T-", "fail"), ("triage_ticket", "STUCK-", "hang"))
    plan.check("notify_customer", "X-1")  # another prefix: nothing
    with pytest.raises(InjectedFault, match="injected fault in notify_customer"):
        plan.check("notify_customer", "T-1")
    outcome = {}

    def hang():
        try:
            plan.check("triage_ticket", "STUCK-1")
        except InjectedFault as error:
            outcome["error"] = str(error)

    worker = threading.Thread(target=hang)
    worker.start()
    worker.join(0.3)
    assert worker.is_alive()  # hung: no result, no failure
    plan.release()
    worker.join(5)
    assert not worker.is_alive() and "injected hang in triage_ticket ended" in outcome["error"]


def test_an_unknown_mode_is_refused_at_start():
    with pytest.raises(ValueError, match="unknown mode 'sleep'"):
        FaultPlan.parse("triage_ticket@T-:sleep")
