"""Ticket lifecycle on the real runtime: idempotent filing, authentication and roles, decisions
(reject/revise/approve, edited text, Idempotency-Key, conflicts), cancel, list and timeline."""

from __future__ import annotations

import pytest

from scripts.devstack import stop_process
from tests.support.harness import poll, status_of, wait_for_stage

PORT_TIMEOUT = 60


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("lifecycle", 26000, app_env={"APPROVAL_TIMEOUT": "1h"})


@pytest.fixture(scope="module")
def engineer(service):
    with service.client("engineer") as client:
        yield client


def ticket(ticket_id, customer_id="CUST001", description="Our sidecar cannot reach the app: connection refused on port 3000 in staging"):
    return {"ticket_id": ticket_id, "customer_id": customer_id, "description": description}


def file(client, body, expected=202):
    response = client.post("/support/ticket", json=body)
    assert response.status_code == expected, response.text
    return response


def test_filing_is_idempotent_and_conflicts_on_other_content(engineer):
    first = file(engineer, ticket("LC-DUP"))
    again = file(engineer, ticket("LC-DUP"), expected=200)
    assert again.json() == first.json()
    other = file(engineer, ticket("LC-DUP", description="something else"), expected=409)
    assert "different content" in other.json()["detail"]
    assert len([e for e in engineer.get("/support/tickets/LC-DUP/timeline").json()["events"]
                if e["kind"] == "filed"]) == 1


def test_a_finished_ticket_is_never_restarted(engineer):
    file(engineer, ticket("LC-DONE", customer_id="CUST003"))
    done = wait_for_stage(engineer, "LC-DONE", "not_entitled")
    assert file(engineer, ticket("LC-DONE", customer_id="CUST003"), expected=200).json()["instance_id"] == "LC-DONE"
    assert file(engineer, ticket("LC-DONE", customer_id="CUST003", description="new"), expected=409)
    assert status_of(engineer, "LC-DONE") == done


def test_invalid_ticket_ids_are_refused(engineer):
    for bad in ("has space", "slash/id", "dot.id", "x" * 65, ""):
        assert engineer.post("/support/ticket", json=ticket(bad)).status_code == 422, bad


def test_authentication_and_roles(service):
    with service.client(None) as anonymous:
        assert anonymous.post("/support/ticket", json=ticket("LC-AUTH")).status_code == 401
        assert anonymous.get("/support/status/LC-AUTH",
                             headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/docs").status_code == 200
    with service.client("client") as client, service.client("other-client") as other, \
            service.client("operator") as operator:
        file(client, ticket("LC-AUTH"))
        assert client.get("/support/status/LC-AUTH").status_code == 200
        assert other.get("/support/status/LC-AUTH").status_code == 404  # not theirs
        assert operator.get("/support/status/LC-AUTH").status_code == 200
        assert client.post("/support/approve/LC-AUTH", json={"approved": True}).status_code == 403
        assert client.get("/support/tickets").status_code == 403
        assert operator.post("/support/ticket", json=ticket("LC-AUTH2")).status_code == 403
        assert operator.post("/support/approve/LC-AUTH", json={"approved": True}).status_code == 403
        assert operator.get("/support/tickets").status_code == 200
        assert "role 'client'" in client.get("/support/tickets").json()["detail"]


def test_reject_revise_then_approve_with_edited_text(service, engineer):
    file(engineer, ticket("LC-REV"))
    first = wait_for_stage(engineer, "LC-REV", "awaiting_approval")
    assert first["revision"] == 0 and first["sla_due"]
    rejected = engineer.post("/support/approve/LC-REV",
                             json={"approved": False, "support_notes": "They run on Kubernetes: check the dapr.io/app-port annotation"})
    assert rejected.status_code == 202
    second = poll(lambda: status_of(engineer, "LC-REV"),
                  lambda s: s.get("stage") == "awaiting_approval" and s.get("revision") == 1, PORT_TIMEOUT)
    assert second["output"]["proposal"]["summary"]
    stored = service.state("analysis-state", "analysis:LC-REV:1")
    assert stored["revision"] == 1 and "dapr.io/app-port" in stored["revision_notes"]
    assert service.state("analysis-state", "analysis:LC-REV:0")["revision_notes"] is None

    edited = "Set the annotation dapr.io/app-port: \"3000\" and redeploy."
    assert engineer.post("/support/approve/LC-REV", json={"approved": True, "final_solution": edited}).status_code == 202
    done = wait_for_stage(engineer, "LC-REV", "completed")
    assert done["decision"]["approver"] == "tester-engineer" and done["revision"] == 1
    assert edited in service.state("analysis-state", "notification:LC-REV:resolved")["body"]


def test_retried_decision_with_idempotency_key_is_a_no_op(engineer):
    file(engineer, ticket("LC-IDEM"))
    wait_for_stage(engineer, "LC-IDEM", "awaiting_approval")
    headers = {"Idempotency-Key": "decide-LC-IDEM-1"}
    first = engineer.post("/support/approve/LC-IDEM", json={"approved": True}, headers=headers)
    again = engineer.post("/support/approve/LC-IDEM", json={"approved": True}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["status"] == again.json()["status"] == "accepted"
    wait_for_stage(engineer, "LC-IDEM", "completed")
    late = engineer.post("/support/approve/LC-IDEM", json={"approved": True}, headers=headers)
    assert late.status_code == 202 and late.json()["status"] == "accepted" and late.json()["revision"] == 0
    other = engineer.post("/support/approve/LC-IDEM", json={"approved": False}, headers=headers)
    assert other.status_code == 409
    decisions = [e for e in engineer.get("/support/tickets/LC-IDEM/timeline").json()["events"] if e["kind"] == "decision"]
    assert len(decisions) == 1


def test_decision_while_still_analysing_is_a_conflict(service, engineer):
    # Pause each ticket right after filing to hold it before its wait; a ticket whose analysis
    # beat the pause is released, and the next one tried.
    held = None
    with service.sidecar() as sidecar:
        for attempt in range(8):
            ticket_id = f"LC-EARLY-{attempt}"
            file(engineer, ticket(ticket_id))
            assert sidecar.post(f"/v1.0/workflows/dapr/{ticket_id}/pause").status_code == 202
            status = poll(lambda: status_of(engineer, ticket_id), lambda s: s.get("status") == "suspended", 30)
            if status["stage"] in ("pending", "triage", "expert_analysis"):
                held = ticket_id
                break
            assert sidecar.post(f"/v1.0/workflows/dapr/{ticket_id}/resume").status_code == 202
        assert held, "every ticket reached its wait before it could be paused"
        response = engineer.post(f"/support/approve/{held}", json={"approved": True})
        assert response.status_code == 409 and "not waiting" in response.json()["detail"]
        assert sidecar.post(f"/v1.0/workflows/dapr/{held}/resume").status_code == 202
    wait_for_stage(engineer, held, "awaiting_approval")


def test_cancel_ends_the_ticket_and_tells_the_customer(service, engineer):
    file(engineer, ticket("LC-CANCEL"))
    wait_for_stage(engineer, "LC-CANCEL", "awaiting_approval")
    response = engineer.post("/support/tickets/LC-CANCEL/cancel", json={"reason": "customer fixed it"})
    assert response.status_code == 202, response.text
    done = wait_for_stage(engineer, "LC-CANCEL", "cancelled")
    assert done["status"] == "completed" and done["output"]["cancellation"]["by"] == "tester-engineer"
    notification = service.state("analysis-state", "notification:LC-CANCEL:cancelled")
    assert notification["kind"] == "cancelled" and "customer fixed it" in notification["body"]
    assert engineer.post("/support/tickets/LC-CANCEL/cancel").status_code == 409
    kinds = [e["kind"] for e in engineer.get("/support/tickets/LC-CANCEL/timeline").json()["events"]]
    assert kinds[-4:] == ["cancelled", "notification_sent", "delivered", "finished"]


def test_timeline_lists_every_event_in_order(engineer):
    file(engineer, ticket("LC-TL"))
    wait_for_stage(engineer, "LC-TL", "awaiting_approval")
    engineer.post("/support/approve/LC-TL", json={"approved": True, "support_notes": "looks right"})
    wait_for_stage(engineer, "LC-TL", "completed")
    events = engineer.get("/support/tickets/LC-TL/timeline").json()["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "filed" and kinds[1] == "triaged"
    assert kinds.count("kb_query") >= 3
    assert kinds[-7:] == ["proposed", "solution_published", "decision", "notification_sent", "delivered",
                          "case_indexed", "finished"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    decision = events[-5]
    assert decision["actor"] == "tester-engineer" and decision["details"]["support_notes"] == "looks right"
    assert engineer.get("/support/tickets/NOPE/timeline").status_code == 404


def test_list_filters_and_pages_newest_first(engineer):
    for i in range(3):
        file(engineer, ticket(f"LC-LIST-{i}", customer_id="CUST002"))
    for i in range(3):
        wait_for_stage(engineer, f"LC-LIST-{i}", "awaiting_approval")
    mine = engineer.get("/support/tickets", params={"customer_id": "CUST002"}).json()
    assert [t["ticket_id"] for t in mine["tickets"]] == ["LC-LIST-2", "LC-LIST-1", "LC-LIST-0"]
    assert mine["next_cursor"] is None

    page1 = engineer.get("/support/tickets", params={"customer_id": "CUST002", "limit": 2}).json()
    assert [t["ticket_id"] for t in page1["tickets"]] == ["LC-LIST-2", "LC-LIST-1"]
    page2 = engineer.get("/support/tickets", params={"customer_id": "CUST002", "limit": 2,
                                                     "cursor": page1["next_cursor"]}).json()
    assert [t["ticket_id"] for t in page2["tickets"]] == ["LC-LIST-0"]

    waiting = engineer.get("/support/tickets", params={"awaiting_decision": "true", "limit": 200}).json()["tickets"]
    assert {"LC-LIST-0", "LC-LIST-1", "LC-LIST-2"} <= {t["ticket_id"] for t in waiting}
    assert all(t["awaiting_decision"] for t in waiting)
    finished = engineer.get("/support/tickets", params={"stage": "not_entitled"}).json()["tickets"]
    assert "LC-DONE" in [t["ticket_id"] for t in finished]
    assert engineer.get("/support/tickets", params={"limit": 0}).status_code == 422


def test_a_deleted_read_model_is_rebuilt_from_the_workflows(service, engineer):
    before = engineer.get("/support/tickets", params={"limit": 200}).json()["tickets"]
    timelines = {t["ticket_id"]: engineer.get(f"/support/tickets/{t['ticket_id']}/timeline").json()
                 for t in before}
    stop_process("app", service.stack.run_dir)
    service.delete_read_model()
    service.start_app()
    after = poll(lambda: engineer.get("/support/tickets", params={"limit": 200}).json().get("tickets"),
                 lambda tickets: tickets is not None and len(tickets) == len(before), message="read model not rebuilt")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("updated_at", "runtime_checked_at")} for r in rows]  # noqa: E731
    assert strip(after) == strip(before)
    for ticket_id, timeline in timelines.items():
        assert engineer.get(f"/support/tickets/{ticket_id}/timeline").json() == timeline
