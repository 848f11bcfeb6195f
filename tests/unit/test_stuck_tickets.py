"""The stuck-ticket escalation (app/services/stuck_tickets.py) on a scripted clock: which running
tickets the sweep hands to a person, and how often."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from app.core.config import Settings
from app.services.stuck_tickets import StuckTicketEscalation
from app.services.workflow_gateway import Instance
from app.workflows.contracts import TICKET_WORKFLOW

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
STUCK_AFTER, APPROVAL_TIMEOUT = 900, 3600


def running(idle_s: float, status: str = "running") -> Instance:
    return Instance(instance_id="T-1", name=TICKET_WORKFLOW, runtime_status=status,
                    last_updated_at=(NOW - timedelta(seconds=idle_s)).isoformat())


@pytest.fixture
def rig():
    published, failures = [], []

    def publish(row, reason, detail):
        if failures:
            raise failures.pop()
        published.append((row["ticket_id"], reason, detail))
        return True

    services = SimpleNamespace(settings=Settings(stuck_after=STUCK_AFTER, approval_timeout=APPROVAL_TIMEOUT))
    return StuckTicketEscalation(services, now=lambda: NOW, publish=publish), published, failures


def test_a_ticket_that_stopped_moving_for_stuck_after_is_escalated_once(rig):
    escalate, published, _ = rig
    row = {"ticket_id": "T-1", "stage": "expert_analysis", "awaiting_decision": False}
    assert escalate(row, running(STUCK_AFTER - 5)) is False and published == []
    assert escalate(row, running(STUCK_AFTER + 5)) is True
    assert [(t, r) for t, r, _ in published] == [("T-1", "workflow_stuck")]
    assert "stage expert_analysis" in published[0][2]
    assert escalate(row, running(STUCK_AFTER + 60)) is False and len(published) == 1


def test_a_ticket_waiting_for_a_decision_is_stuck_only_after_its_approval_timeout_too(rig):
    escalate, published, _ = rig
    row = {"ticket_id": "T-1", "stage": "awaiting_approval", "awaiting_decision": True}
    assert escalate(row, running(APPROVAL_TIMEOUT)) is False and published == []
    assert escalate(row, running(APPROVAL_TIMEOUT + STUCK_AFTER + 1)) is True and len(published) == 1


def test_a_suspended_instance_waits_on_purpose(rig):
    escalate, published, _ = rig
    row = {"ticket_id": "T-1", "stage": "triage", "awaiting_decision": False}
    assert escalate(row, running(10 * STUCK_AFTER, status="suspended")) is False and published == []


def test_an_escalation_the_broker_refused_is_tried_at_the_next_check(rig):
    escalate, published, failures = rig
    row = {"ticket_id": "T-1", "stage": "triage", "awaiting_decision": False}
    failures.append(ConnectionError("pub/sub unreachable"))
    with pytest.raises(ConnectionError):
        escalate(row, running(STUCK_AFTER + 5))
    assert escalate(row, running(STUCK_AFTER + 10)) is True and len(published) == 1
