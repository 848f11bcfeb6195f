"""The approval wait times out on a durable timer (scheduler) and the ticket escalates."""

from __future__ import annotations

import pytest

from tests.support.harness import poll, wait_for_stage


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("escalation", 22000, app_env={"APPROVAL_TIMEOUT": "4s"})


def test_unanswered_proposal_escalates_after_the_timeout(service):
    with service.client() as api:
        filed = api.post("/support/ticket", json={
            "ticket_id": "ESC-1", "customer_id": "CUST002",
            "description": "Messages published to the orders topic never reach the subscriber"})
        assert filed.status_code == 202, filed.text
        wait_for_stage(api, "ESC-1", "awaiting_approval")
        status = wait_for_stage(api, "ESC-1", "escalated", timeout=60)
    assert status["status"] == "completed"
    assert status["output"]["escalation"]["reason"] == "approval_timeout"
    inbox = poll(lambda: service.state("analysis-state", "inbox:ticket-escalations:ESC-1"),
                 lambda v: v is not None, message="escalation not received")
    assert len(inbox["messages"]) == 1
    assert inbox["messages"][0]["data"]["reason"] == "approval_timeout"
    assert inbox["messages"][0]["data"]["plan"] == "professional"
    notification = service.state("analysis-state", "notification:ESC-1:escalated")
    assert notification["kind"] == "escalated" and "support engineer will contact you" in notification["body"]
