"""The first-response SLA passes while a ticket waits: one escalation, shown in the status, and
not repeated when the app restarts; the wait goes on and the ticket can still be approved."""

from __future__ import annotations

import pytest

from tests.support.harness import poll, status_of, wait_for_stage


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("sla", 27000, app_env={"APPROVAL_TIMEOUT": "1h", "SLA_OVERRIDE": "3s"})


def test_sla_breach_escalates_once_across_a_restart(service):
    with service.client() as api:
        filed = api.post("/support/ticket", json={"ticket_id": "SLA-1", "customer_id": "CUST001",
                                                  "description": "Production pub/sub messages are lost since the upgrade"})
        assert filed.status_code == 202
        escalated = poll(lambda: status_of(api, "SLA-1"), lambda s: "sla_breach" in s.get("escalations", []), 60,
                         message="no SLA escalation")
        assert escalated["stage"] == "awaiting_approval" and escalated["waiting_seconds"] >= 0
    inbox = poll(lambda: service.state("analysis-state", "inbox:ticket-escalations:SLA-1"),
                 lambda v: v is not None, message="escalation not published")
    message = inbox["messages"][0]["data"]
    assert message["reason"] == "sla_breach" and message["plan"] == "enterprise"
    assert message["priority"] and message["overdue_by_seconds"] >= 0

    service.kill("app")
    service.start_app()
    with service.client() as api:
        assert api.post("/support/approve/SLA-1", json={"approved": True}).status_code == 202
        done = wait_for_stage(api, "SLA-1", "completed")
        assert done["escalations"] == ["sla_breach"]
        escalations = [e for e in api.get("/support/tickets/SLA-1/timeline").json()["events"] if e["kind"] == "escalated"]
    assert len(escalations) == 1
    assert len(service.state("analysis-state", "inbox:ticket-escalations:SLA-1")["messages"]) == 1
