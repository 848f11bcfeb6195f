"""FAULT_INJECTION rules: fail, hang until released, or fail as unreachable, for the first N
attempts of each ticket (app/core/faults.py)."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.faults import FaultPlan, FaultRule, InjectedFault
from app.core.unreachable import DependencyUnavailable, unreachable


def test_rules_fail_by_prefix_and_hang_until_released():
    plan = FaultPlan.parse("notify_customer@T-, triage_ticket@STUCK-:hang")
    assert plan.rules == (FaultRule("notify_customer", "T-", "fail"), FaultRule("triage_ticket", "STUCK-", "hang"))
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
    with pytest.raises(ValueError, match="unknown mode 'unreachable\\*x'"):
        FaultPlan.parse("triage_ticket@T-:unreachable*x")


def test_an_outage_of_n_attempts_per_ticket_fails_as_unreachable_and_passes():
    plan = FaultPlan.parse("propose_solution@OUT-:unreachable*2~0.05")
    assert str(plan.rules[0]) == "propose_solution@OUT-:unreachable*2~0.05"
    for ticket_id in ("OUT-1", "OUT-2"):  # counted per ticket
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(DependencyUnavailable) as failed:
                plan.check("propose_solution", ticket_id)
            assert time.monotonic() - started >= 0.05  # each failing attempt is held first
            assert unreachable(failed.value)  # the workflow waits it out
        plan.check("propose_solution", ticket_id)  # the third attempt goes through
    plan.check("notify_customer", "OUT-1")
