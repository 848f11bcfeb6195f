"""A full stop (app, sidecar, placement, scheduler, redis) with tickets in every stage, then a
start: every ticket's status is as before, waiting tickets accept their decision, the tickets
that were running go on, and durable timers (SLA, approval timeout) still fire.

Tickets are held in a passing stage (triage or expert analysis) and with a decision not yet
applied by pausing their workflow through the sidecar, so "as before" can be compared exactly;
other tickets are left running through the stop. (Stops during the notification itself are
what `make chaos` and test_chaos_small.py do.)"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from tests.support.harness import pause, poll, resume, status_of, wait_for_stage

NORMAL = {"APPROVAL_TIMEOUT": "1h"}
# Filed under these, a ticket's first-response SLA and approval wait end soon after the restart.
TIMERS = {"APPROVAL_TIMEOUT": "40s", "SLA_OVERRIDE": "25s", "MAX_REVISIONS": "0"}
TEXT = "Our sidecar cannot reach the app: connection refused on port 3000 in staging"


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("restarts", 30020, app_env=dict(NORMAL))


def file(api, ticket_id: str, customer_id: str = "CUST001", description: str = TEXT) -> None:
    response = api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": customer_id,
                                                 "description": description})
    assert response.status_code == 202, response.text


def decide(api, ticket_id: str, **body) -> None:
    response = api.post(f"/support/approve/{ticket_id}", json={"approved": True, **body})
    assert response.status_code == 202, response.text


def comparable(status: dict) -> dict:
    """The status without the one field that moves with the clock."""
    return {k: v for k, v in status.items() if k != "waiting_seconds"}


def notifications_received(service, ticket_id: str) -> int:
    inbox = poll(lambda: service.state("analysis-state", f"inbox:customer-notifications:{ticket_id}"),
                 lambda v: v is not None, 30, message=f"no notification received for {ticket_id}")
    return len(inbox["messages"])


def test_full_stop_and_start_with_tickets_in_every_stage(service):
    with service.client() as api:
        # Settled stages.
        file(api, "RS-DONE")
        wait_for_stage(api, "RS-DONE", "awaiting_approval")
        decide(api, "RS-DONE")
        file(api, "RS-NOENT", customer_id="CUST003")
        file(api, "RS-CANCEL")
        wait_for_stage(api, "RS-CANCEL", "awaiting_approval")
        assert api.post("/support/tickets/RS-CANCEL/cancel", json={"reason": "duplicate"}).status_code == 202
        file(api, "RS-WAIT")
        file(api, "RS-REV1")
        file(api, "RS-NOTIFY")
        wait_for_stage(api, "RS-REV1", "awaiting_approval")
        decide(api, "RS-REV1", approved=False, support_notes="they run on Kubernetes, check the annotation")
        poll(lambda: status_of(api, "RS-REV1"), lambda s: s.get("stage") == "awaiting_approval" and s["revision"] == 1,
             60, message="RS-REV1 did not wait with revision 1")
        for ticket_id, stage in (("RS-DONE", "completed"), ("RS-NOENT", "not_entitled"), ("RS-CANCEL", "cancelled"),
                                 ("RS-WAIT", "awaiting_approval"), ("RS-NOTIFY", "awaiting_approval")):
            wait_for_stage(api, ticket_id, stage)

    # Tickets with timers that end soon, and one that escalates at its first rejection.
    service.app_env.update(TIMERS)
    service.restart_app()
    with service.client() as api:
        file(api, "RS-ESC")
        file(api, "RS-TIMER")
        wait_for_stage(api, "RS-ESC", "awaiting_approval")
        decide(api, "RS-ESC", approved=False, support_notes="no")
        wait_for_stage(api, "RS-ESC", "escalated")
        timer = wait_for_stage(api, "RS-TIMER", "awaiting_approval")
        assert timer["escalations"] == [] and timer["sla_due"]

        # Held in passing stages (paused), and left running through the stop.
        file(api, "RS-HELD")
        pause(service, "RS-HELD")
        pause(service, "RS-NOTIFY")  # its decision reaches a paused workflow: it is pending across the stop
        decide(api, "RS-NOTIFY")
        for i in range(3):
            file(api, f"RS-RUN-{i}")
        held_ids = ["RS-HELD", "RS-NOTIFY"]
        poll(lambda: [status_of(api, t)["status"] for t in held_ids], lambda v: v == ["suspended"] * 2, 30,
             message="paused tickets did not report suspended")
        settled = ["RS-DONE", "RS-NOENT", "RS-CANCEL", "RS-ESC", "RS-WAIT", "RS-REV1", "RS-TIMER", *held_ids]
        before = {t: status_of(api, t) for t in settled}
        running_before = {f"RS-RUN-{i}": status_of(api, f"RS-RUN-{i}")["stage"] for i in range(3)}
    assert before["RS-HELD"]["stage"] in ("pending", "triage", "expert_analysis", "awaiting_approval"), before["RS-HELD"]
    assert before["RS-NOTIFY"]["stage"] == "awaiting_approval", before["RS-NOTIFY"]
    assert datetime.now(timezone.utc) < datetime.fromisoformat(before["RS-TIMER"]["sla_due"]), \
        "the SLA timer fired before the stop: the test cannot show it surviving one"

    service.stop()  # app, sidecar, placement, scheduler, redis
    stopped_at = time.monotonic()
    service.start()
    restart_seconds = time.monotonic() - stopped_at

    with service.client() as api:
        after = {t: status_of(api, t) for t in settled}
        timer_now = after.pop("RS-TIMER")
        timer_before = before.pop("RS-TIMER")
        assert {t: comparable(s) for t, s in after.items()} == {t: comparable(s) for t, s in before.items()}
        if timer_now["escalations"] == timer_before["escalations"]:  # its SLA may already have fired
            assert comparable(timer_now) == comparable(timer_before)

        # Waiting tickets accept their decision; the others go on from where they were.
        decide(api, "RS-WAIT")
        decide(api, "RS-REV1", final_solution="Set dapr.io/app-port to 3000 and redeploy.")
        for ticket_id in held_ids:
            resume(service, ticket_id)
        wait_for_stage(api, "RS-HELD", "awaiting_approval")
        decide(api, "RS-HELD")
        for i in range(3):
            wait_for_stage(api, f"RS-RUN-{i}", "awaiting_approval", timeout=90)
            decide(api, f"RS-RUN-{i}")
        finished = ["RS-WAIT", "RS-REV1", "RS-HELD", "RS-NOTIFY", *(f"RS-RUN-{i}" for i in range(3))]
        for ticket_id in finished:
            wait_for_stage(api, ticket_id, "completed", timeout=90)
        assert status_of(api, "RS-REV1")["revision"] == 1

        # Durable timers: the SLA escalates once, then the approval wait times out.
        timed_out = wait_for_stage(api, "RS-TIMER", "escalated", timeout=120)
        assert timed_out["escalations"] == ["sla_breach", "approval_timeout"], timed_out
        assert timed_out["output"]["escalation"]["reason"] == "approval_timeout"

    for ticket_id in [*finished, "RS-DONE", "RS-NOENT", "RS-CANCEL", "RS-ESC", "RS-TIMER"]:
        assert notifications_received(service, ticket_id) == 1, ticket_id
    assert service.state("analysis-state", "notification:RS-REV1:resolved")["body"].count("dapr.io/app-port to 3000") == 1
    escalations = service.state("analysis-state", "inbox:ticket-escalations:RS-TIMER")
    assert [m["data"]["reason"] for m in escalations["messages"]] == ["sla_breach", "approval_timeout"]
    print(f"restart took {restart_seconds:.1f}s; running tickets were at {running_before}")
