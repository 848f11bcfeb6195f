"""An upgrade with tickets in flight loses none (issue 15), on real processes, four times:
tickets started on v1 wait in each state while the app is replaced by the release that made v2
the latest (records on the steps), those started on v2 wait while it is replaced by the release
that made v3 the latest (proposals and notifications by reference), those started on v3 wait
while it is replaced by the current release (v4, the propose step told its subject only), and
those started on v4 wait while it is replaced by a test build of v5 (a new first step). Every
ticket completes on its own version's path, every new ticket takes the newest, and no instance
ends FAILED or STALLED."""

from __future__ import annotations

import pytest

from scripts.devstack import stop_process
from tests.support.harness import poll, status_of, wait_for_stage

DESCRIPTION = "Production checkout is down: the sidecar gets connection refused from the app on port 5000"


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("upgrade", 12000, app_env={"APPROVAL_TIMEOUT": "1h", "SLA_OVERRIDE": "8s"})


def file(api, ticket_id, customer_id="CUST001"):
    response = api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": customer_id,
                                                 "description": DESCRIPTION})
    assert response.status_code == 202, response.text


def kinds(api, ticket_id):
    return [e["kind"] for e in api.get(f"/support/tickets/{ticket_id}/timeline").json()["events"]]


def leave_waiting(api, prefix: str) -> list[str]:
    """Three tickets left waiting: at revision 0, at revision 1 after a rejection, and escalated
    for their SLA while still waiting for a decision."""
    ids = [f"{prefix}-REV0", f"{prefix}-REV1", f"{prefix}-ESC"]
    for ticket_id in ids:
        file(api, ticket_id)
    for ticket_id in ids:
        wait_for_stage(api, ticket_id, "awaiting_approval")
    assert api.post(f"/support/approve/{ids[1]}", json={"approved": False, "support_notes": "check mTLS"}).status_code == 202
    poll(lambda: status_of(api, ids[1]), lambda s: s.get("stage") == "awaiting_approval" and s.get("revision") == 1)
    poll(lambda: status_of(api, ids[2]), lambda s: "sla_breach" in (s.get("escalations") or []), 60)
    return ids


def upgrade(service, versions_module: str | None) -> None:
    """Stop the app, start the build that registers the given versions (None: the current release)."""
    stop_process("app", service.stack.run_dir)
    service.app_env.pop("WORKFLOW_VERSIONS_MODULE", None)
    if versions_module:
        service.app_env["WORKFLOW_VERSIONS_MODULE"] = versions_module
    service.start_app()


def decide_all(api, ids: list[str]) -> None:
    for ticket_id in ids:
        body = {"approved": True, **({"revision": 1} if ticket_id.endswith("REV1") else {})}
        response = api.post(f"/support/approve/{ticket_id}", json=body)
        assert response.status_code == 202 and response.json()["status"] == "accepted", response.text


def completed_on(api, ids: list[str], version: str) -> None:
    for ticket_id in ids:
        done = wait_for_stage(api, ticket_id, "completed")
        assert done["status"] == "completed" and done["version"] == version, done
    # Every transition reached the timeline, whichever way the version records it.
    for ticket_id in ids:
        events = kinds(api, ticket_id)
        assert events[0] in ("filed", "next_step") and events[-1] == "finished", (ticket_id, events)
        assert {"triaged", "proposed", "decision", "notification_sent", "delivered"} <= set(events), events


def test_tickets_in_flight_finish_on_their_own_version_across_four_upgrades(service):
    # Two releases before: v1 is the latest.
    upgrade(service, "tests.support.release_v1")
    with service.client() as api:
        on_v1 = leave_waiting(api, "UP1")

    # The release before: v2 (records on the steps) is the latest; v1 stays registered.
    upgrade(service, "tests.support.release_v2")
    with service.client() as api:
        on_v2 = leave_waiting(api, "UP2")
        decide_all(api, on_v1)
        completed_on(api, on_v1, "v1")
        assert status_of(api, "UP1-REV1")["revision"] == 1

    # The release before: v3 (proposals and notifications by reference) is the latest.
    upgrade(service, "tests.support.release_v3")
    with service.client() as api:
        on_v3 = leave_waiting(api, "UP3")
        decide_all(api, on_v2)
        completed_on(api, on_v2, "v2")
        assert status_of(api, "UP2-REV1")["revision"] == 1

    # The current release: v4 (the propose step told its subject only) is the latest.
    upgrade(service, None)
    with service.client() as api:
        on_v4 = leave_waiting(api, "UP4")
        decide_all(api, on_v3)
        completed_on(api, on_v3, "v3")
        assert status_of(api, "UP3-REV1")["revision"] == 1

    # The next build (a test build of v5: v4 with a new first step).
    upgrade(service, "tests.support.workflow_next")
    with service.client() as api:
        file(api, "UP5-NEW")
        decide_all(api, on_v4)
        wait_for_stage(api, "UP5-NEW", "awaiting_approval")
        decide_all(api, ["UP5-NEW"])
        completed_on(api, on_v4, "v4")
        completed_on(api, ["UP5-NEW"], "v5")
        assert status_of(api, "UP4-REV1")["revision"] == 1
        # A v3 or v4 ticket's status shows the approved proposal and the mail as v1 and v2
        # outputs do, read from the records the output names.
        for ticket_id in on_v1 + on_v2 + on_v3 + on_v4:
            output = status_of(api, ticket_id)["output"]
            assert output["final_solution"].startswith(output["proposal"]["summary"]), (ticket_id, output)
            assert output["notification"]["kind"] == "resolved" and output["final_solution"] in output["notification"]["body"]
            assert "next_step" not in kinds(api, ticket_id)
        assert "next_step" in kinds(api, "UP5-NEW")
        listed = {t["ticket_id"]: t for t in api.get("/support/tickets", params={"limit": 50}).json()["tickets"]}
        assert {t: listed[t]["workflow_version"] for t in ("UP1-REV0", "UP2-REV0", "UP3-REV0", "UP4-REV0", "UP5-NEW")} == {
            "UP1-REV0": "v1", "UP2-REV0": "v2", "UP3-REV0": "v3", "UP4-REV0": "v4", "UP5-NEW": "v5"}
        assert not [t for t in listed.values() if t["status"] in ("failed", "stalled")]
