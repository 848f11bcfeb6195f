"""A ticket through every stage on a real daprd, placement and scheduler (offline mode)."""

from __future__ import annotations

import json

import pytest

from tests.support.harness import poll, status_of, wait_for_stage


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("flow", 21000, app_env={"APPROVAL_TIMEOUT": "1h"})


@pytest.fixture(scope="module")
def api(service):
    with service.client() as client:
        yield client


def file(api, ticket_id, customer_id="CUST001",
         description="Production checkout is down: the sidecar gets connection refused from the app on port 5000"):
    response = api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": customer_id,
                                                 "description": description})
    assert response.status_code == 202, response.text
    assert response.json() == {"instance_id": ticket_id, "ticket_id": ticket_id, "status": "workflow_started"}


def test_health_reports_sidecar_stores_and_data(api):
    health = api.get("/health")
    assert health.status_code == 200, health.text
    assert health.json()["checks"] == {"sidecar": "ok", "customer-state": "ok", "system-state": "ok",
                                       "analysis-state": "ok", "read-model": "ok"}
    assert api.get("/health/data").json() == {"loaded": True, "customers": {
        "CUST001": True, "CUST002": True, "CUST003": True}}


def test_enterprise_ticket_waits_for_approval_with_stored_and_announced_analysis(service, api):
    file(api, "FLOW-1")
    status = wait_for_stage(api, "FLOW-1", "awaiting_approval")
    assert status["status"] == "running"
    proposal = status["output"]["proposal"]
    assert "app-port-mismatch" in proposal["cited_articles"]
    assert status["output"]["priority"] == "critical"
    assert status["output"]["sla"]["first_response_target"] == "1 h"

    stored = service.state("analysis-state", "analysis:FLOW-1:0")
    assert stored["proposal"] == proposal and stored["revision"] == 0
    assert len(stored["kb_queries"]) >= 3
    inbox = poll(lambda: service.state("analysis-state", "inbox:solution-ready:FLOW-1"),
                 lambda v: v is not None, message="solution-ready not received")
    assert [m["data"]["ticket_id"] for m in inbox["messages"]] == ["FLOW-1"]
    assert inbox["messages"][0]["data"]["priority"] == "critical"
    assert inbox["messages"][0]["data"]["proposal"]["cited_articles"] == proposal["cited_articles"]


def test_approval_completes_with_one_stored_and_published_notification(service, api):
    wait_for_stage(api, "FLOW-1", "awaiting_approval")
    response = api.post("/support/approve/FLOW-1", json={"approved": True})
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "ticket_id": "FLOW-1", "instance_id": "FLOW-1",
                               "revision": 0, "stage": "notifying"}

    status = wait_for_stage(api, "FLOW-1", "completed")
    assert status["status"] == "completed"
    notification = service.state("analysis-state", "notification:FLOW-1:resolved")
    assert notification["kind"] == "resolved" and notification["generated_by"] == "offline"
    assert status["output"]["notification"] == notification
    assert "app-port-mismatch" in notification["body"]
    inbox = poll(lambda: service.state("analysis-state", "inbox:customer-notifications:FLOW-1"),
                 lambda v: v is not None, message="notification not received")
    assert len(inbox["messages"]) == 1 and inbox["messages"][0]["data"]["body"] == notification["body"]


def test_basic_plan_customer_is_not_entitled_and_gets_no_analysis(service, api):
    file(api, "FLOW-BASIC", customer_id="CUST003", description="How do I configure a cron binding?")
    status = wait_for_stage(api, "FLOW-BASIC", "not_entitled")
    assert status["status"] == "completed"
    assert status["output"]["triage"]["entitled"] is False
    assert service.state("analysis-state", "analysis:FLOW-BASIC:0") is None
    notification = service.state("analysis-state", "notification:FLOW-BASIC:not_entitled")
    assert notification["kind"] == "not_entitled" and "community" in notification["body"]


def test_decision_raised_before_the_wait_is_applied(service, api):
    file(api, "FLOW-EARLY", customer_id="CUST002",
         description="Workflow instances stay RUNNING forever in staging; activities never run")
    # Straight to the engine, as `dapr workflow raise-event` would, while triage is still running.
    with service.sidecar() as sidecar:
        raised = sidecar.post("/v1.0/workflows/dapr/FLOW-EARLY/raiseEvent/solution_approved",
                              json={"approved": True, "revision": 0, "final_solution": "Register the activity."})
    assert raised.status_code == 202, raised.text
    status = wait_for_stage(api, "FLOW-EARLY", "completed")
    assert status["output"]["final_solution"] == "Register the activity."
    assert status["revision"] == 0  # applied to the first proposal, once
    assert "Register the activity." in service.state("analysis-state", "notification:FLOW-EARLY:resolved")["body"]
    received = poll(lambda: service.state("analysis-state", "inbox:customer-notifications:FLOW-EARLY"),
                    lambda v: v is not None, message="notification not received")
    assert len(received["messages"]) == 1 and received["redeliveries"] == 0


def test_a_caller_waits_for_each_change_with_one_request_each(api):
    """GET status with the ETag it answered and `wait`: each answer is the next stage the
    workflow recorded, until the ticket waits for its decision; no answer repeats a status."""
    file(api, "T-WAIT")
    first = api.get("/support/status/T-WAIT")
    seen, etag = [first.json()["stage"]], first.headers["ETag"]
    while seen[-1] != "awaiting_approval":
        answer = api.get("/support/status/T-WAIT", params={"wait": 30}, headers={"If-None-Match": etag})
        assert answer.status_code == 200, (answer.status_code, seen)
        assert answer.headers["ETag"] != etag
        seen.append(answer.json()["stage"])
        etag = answer.headers["ETag"]
        assert len(seen) < 20, seen
    # Unchanged while it waits for a decision: 304 after the wait, with the same ETag.
    unchanged = api.get("/support/status/T-WAIT", params={"wait": 0.5}, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == etag


def test_bad_requests_get_clear_errors(api):
    bad = api.post("/support/ticket", json={"ticket_id": "bad id/x", "customer_id": "CUST001", "description": "x"})
    assert bad.status_code == 422 and "ticket_id" in bad.text
    missing = api.post("/support/ticket", json={"ticket_id": "FLOW-X", "customer_id": "CUST001"})
    assert missing.status_code == 422 and "description" in missing.text
    unknown_customer = api.post("/support/ticket", json={"ticket_id": "FLOW-X", "customer_id": "NOPE",
                                                         "description": "help"})
    assert unknown_customer.status_code == 404 and "unknown customer_id" in unknown_customer.json()["detail"]
    assert api.get("/support/status/NOPE-404").status_code == 404
    assert api.get("/support/status/NOPE-404").json() == {"detail": "no ticket 'NOPE-404'"}
    assert api.post("/support/approve/NOPE-404", json={"approved": True}).status_code == 404
    assert api.post("/support/approve/FLOW-1", json={"approved": "maybe"}).status_code == 422


def test_decision_on_a_finished_ticket_is_a_conflict(api):
    wait_for_stage(api, "FLOW-1", "completed")
    response = api.post("/support/approve/FLOW-1", json={"approved": True})
    assert response.status_code == 409 and "not waiting" in response.json()["detail"]


def test_status_of_unknown_ticket_is_404_not_null(api):
    response = api.get("/support/status/NEVER-FILED")
    assert response.status_code == 404
    assert status_of(api, "NEVER-FILED") == {"http_status": 404}


def test_knowledge_base_is_an_mcp_server_in_dapr(service):
    """daprd loads resources/knowledge-base-mcp.yaml and exposes the tools as workflows."""
    with service.sidecar() as sidecar:
        started = sidecar.post(
            "/v1.0/workflows/dapr/dapr.internal.mcp.knowledge-base.CallTool.search_knowledge_base/start",
            params={"instanceID": "MCP-SEARCH-1"},
            json={"arguments": {"query": "actors never activate, placement unreachable", "k": 2}})
        assert started.status_code == 202, started.text
        done = poll(lambda: sidecar.get("/v1.0/workflows/dapr/MCP-SEARCH-1").json(),
                    lambda v: v.get("runtimeStatus") in ("COMPLETED", "FAILED"), 30)
    assert done["runtimeStatus"] == "COMPLETED"
    content = json.loads(done["properties"]["dapr.workflow.output"])["content"]
    assert json.loads(content[0]["text"])["slug"] == "placement-unreachable"
