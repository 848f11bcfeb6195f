"""Crash injection, small: 10 tickets, 5 SIGKILLs of the app or its daprd (during the expert
step, right after a decision, during the notification), decisions sent while a process is down
and retried. Every ticket completes, with one notification and its decision. `make chaos` runs
the full version (benchmarks/chaos.py)."""

from __future__ import annotations

import json

import pytest

from benchmarks import chaos


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("chaos_small", 30000, app_env={"APPROVAL_TIMEOUT": "1h"})


def test_tickets_keep_their_promises_while_app_and_sidecar_are_killed(service):
    result = chaos.run(service, tickets=10, kills=5, seed=3, timeout=180, log=lambda _: None)
    report = json.dumps(result, indent=1)
    checks = result["checks"]
    assert checks["completed"] == "10/10", report
    assert checks["all_completed"] and checks["none_stuck"], report
    assert checks["notifications_exactly_once"], report
    assert checks["no_decision_lost"], report
    assert checks["one_mail_per_customer"], report  # what reached the customers (Mailpit)
    assert checks["kills_at_least_planned"] and result["kills"]["total"] == 5, report
    assert set(result["kills"]["by_kind"]) == {"app", "daprd"}, report
    assert checks["moments_hit"] and checks["decision_sent_while_app_down"], report
    assert result["ok"], report
