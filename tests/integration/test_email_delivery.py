"""Customer email through the real customer-email binding (bindings.smtp in daprd) into a real
Mailpit, read back through Mailpit's HTTP API. Delivery records live in the real analysis-state
store. Ports: base 28000 (Mailpit SMTP 28925, API 28926)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from dapr.clients import DaprClient
from dapr.conf import settings as dapr_settings

from app.core.config import Settings
from app.delivery import (DeliverNotificationInput, DeliveryFailed, InvalidDeliveryAddress,
                          NoDeliveryAddress, deliver_notification, delivery_key)
from app.delivery.activity import run_delivery
from app.delivery.message import delivery_reference
from app.delivery.sent_log import MailpitSentLog
from app.store import StateStore
from scripts.devstack import stop_process
from tests.support.harness import mailpit_message, mailpit_messages, poll

SENDER = "Support Test <support@email-test.example>"


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("email", 28000, app_env={"APPROVAL_TIMEOUT": "1h"})


@pytest.fixture(scope="module")
def dapr(service):
    # The SDK's health check reads the HTTP port from its global settings, not from `address`.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dapr_settings, "DAPR_HTTP_PORT", service.ports.dapr_http)
        patch.setattr(dapr_settings, "DAPR_GRPC_PORT", service.ports.dapr_grpc)
        patch.setattr(dapr_settings, "DAPR_API_TOKEN", service.dapr_api_token)
        client = DaprClient(address=f"127.0.0.1:{service.ports.dapr_grpc}")
        yield client
        client.close()


@pytest.fixture(scope="module")
def store(dapr):
    return StateStore(dapr, "analysis-state")


@pytest.fixture(scope="module")
def settings():
    return Settings(_env_file=None, email_from=SENDER, email_delivery_lease=60)


def notification(ticket_id: str, customer_id: str = "CUST001") -> dict:
    return {"ticket_id": ticket_id, "customer_id": customer_id, "kind": "resolved",
            "subject": f"Ticket {ticket_id}: proposed solution",
            "body": f"Hello Acme Corporation,\n\nHere is the solution for {ticket_id}:\n"
                    "1. Set --app-port to 5000 & restart the sidecar\n\nReply if the problem persists."}


def new_ticket() -> str:
    return f"TKT-MAIL-{uuid.uuid4().hex[:8]}"


def mails_for(service, ticket_id: str) -> list[dict]:
    return [m for m in mailpit_messages(service) if ticket_id in m["Subject"]]


def wait_for_mails(service, ticket_id: str, count: int = 1) -> list[dict]:
    return poll(lambda: mails_for(service, ticket_id), lambda mails: len(mails) >= count, 20,
                message=f"{count} mail(s) for {ticket_id} did not arrive at Mailpit")


def test_a_delivered_notification_arrives_once_with_ticket_id_and_body(service, dapr, store, settings):
    ticket_id = new_ticket()
    result = deliver_notification(dapr, store, settings, notification(ticket_id), "ops@acme.example",
                                  priority="critical")
    assert (result.status, result.attempts, result.already_sent) == ("sent", 1, False)
    assert result.sent_at and result.notification_id == f"{ticket_id}:notification"

    [summary] = wait_for_mails(service, ticket_id)
    message = mailpit_message(service, summary["ID"])
    assert message["Subject"] == f"Ticket {ticket_id}: proposed solution"
    assert [to["Address"] for to in message["To"]] == ["ops@acme.example"]
    assert message["From"] == {"Name": "Support Test", "Address": "support@email-test.example"}
    assert f"Here is the solution for {ticket_id}:" in message["HTML"]
    assert "1. Set --app-port to 5000 &amp; restart the sidecar" in message["HTML"]
    assert "Set --app-port to 5000 & restart the sidecar" in message["Text"]
    headers = httpx.get(f"{service.stack.mailpit_url}/api/v1/message/{summary['ID']}/headers", timeout=10).json()
    assert headers["X-Priority"] == ["1"]

    record = store.get_value(delivery_key(result.notification_id))
    assert record["status"] == "sent" and record["attempts"] == 1 and record["lease_until"] is None
    # The call returned after Mailpit accepted the mail: nothing else is on its way.
    assert len(mails_for(service, ticket_id)) == 1


def test_concurrent_deliveries_each_reach_their_own_customer_with_their_own_subject(service, dapr, store, settings):
    """bindings.smtp (components-contrib 1.18.0) merges each request's metadata into the
    component's shared metadata, so two sends at once could swap recipients and subjects: the
    app sends one mail at a time per sidecar (app/delivery/email.py). The window is narrow: 12
    and 40 sends at once did not hit it without the lock, the chaos test once did; the unit test
    (test_delivery_unknown_outcome.py) checks the lock itself."""
    from concurrent.futures import ThreadPoolExecutor

    tickets = [new_ticket() for _ in range(12)]
    address = {t: f"{t.lower()}@customers.example" for t in tickets}
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda t: deliver_notification(dapr, store, settings, notification(t), address[t]),
                                tickets))
    assert [r.status for r in results] == ["sent"] * len(tickets)
    for ticket_id in tickets:
        [summary] = wait_for_mails(service, ticket_id)
        message = mailpit_message(service, summary["ID"])
        assert message["Subject"] == f"Ticket {ticket_id}: proposed solution"
        assert [to["Address"] for to in message["To"]] == [address[ticket_id]]
        assert f"Here is the solution for {ticket_id}:" in message["Text"]


def test_delivering_the_same_notification_twice_sends_one_mail(service, dapr, store, settings):
    ticket_id = new_ticket()
    first = deliver_notification(dapr, store, settings, notification(ticket_id), "dev@techstart.example")
    second = deliver_notification(dapr, store, settings, notification(ticket_id), "dev@techstart.example")
    assert (first.status, first.already_sent) == ("sent", False)
    assert (second.status, second.already_sent, second.attempts) == ("sent", True, 1)
    assert second.sent_at == first.sent_at
    wait_for_mails(service, ticket_id)
    assert len(mails_for(service, ticket_id)) == 1


def test_mail_server_down_fails_with_reason_then_the_retry_delivers_once(service, dapr, store, settings):
    ticket_id = new_ticket()
    assert stop_process("mailpit", service.stack.run_dir)
    try:
        failed = deliver_notification(dapr, store, settings, notification(ticket_id), "ops@acme.example")
        assert failed.status == "failed" and failed.attempts == 1
        assert "connection refused" in failed.reason, failed.reason
        record = store.get_value(delivery_key(failed.notification_id))
        assert record["status"] == "failed" and record["last_error"] == failed.reason
        assert [f["attempt"] for f in record["failures"]] == [1]
        # The activity form raises, so the workflow's retry policy retries it.
        with pytest.raises(DeliveryFailed, match="connection refused"):
            run_delivery(DeliverNotificationInput(ticket_id=ticket_id, notification=notification(ticket_id)),
                         dapr_client=dapr, store=store, customers=StateStore(dapr, "customer-state"),
                         settings=settings)
    finally:
        service.stack.start_one("mailpit")

    retried = deliver_notification(dapr, store, settings, notification(ticket_id), "ops@acme.example")
    assert (retried.status, retried.attempts, retried.already_sent) == ("sent", 3, False)
    wait_for_mails(service, ticket_id)
    again = deliver_notification(dapr, store, settings, notification(ticket_id), "ops@acme.example")
    assert again.already_sent
    assert len(mails_for(service, ticket_id)) == 1
    record = store.get_value(delivery_key(retried.notification_id))
    assert record["status"] == "sent" and [f["attempt"] for f in record["failures"]] == [1, 2]


def test_a_customer_without_address_raises_and_nothing_is_sent_or_recorded(service, dapr, store, settings):
    ticket_id = new_ticket()
    customers = StateStore(dapr, "customer-state")
    customers.save("CUST-NOMAIL", {"customer_id": "CUST-NOMAIL", "name": "No Mail Ltd", "plan": "enterprise"})
    with pytest.raises(NoDeliveryAddress, match="customer CUST-NOMAIL has no contact email"):
        deliver_notification(dapr, store, settings, notification(ticket_id, "CUST-NOMAIL"), None)
    with pytest.raises(InvalidDeliveryAddress):
        deliver_notification(dapr, store, settings, notification(ticket_id, "CUST-NOMAIL"),
                             "ops@acme.example;someone@else.example")

    request = DeliverNotificationInput(ticket_id=ticket_id, notification=notification(ticket_id, "CUST-NOMAIL"))
    output = run_delivery(request, dapr_client=dapr, store=store, customers=customers, settings=settings)
    assert output.status == "no_address" and "CUST-NOMAIL" in output.reason
    assert store.get_value(delivery_key(f"{ticket_id}:notification")) is None
    assert mails_for(service, ticket_id) == []


def test_the_activity_form_mails_the_sample_customers_address(service, dapr, store, settings):
    ticket_id = new_ticket()
    request = DeliverNotificationInput(ticket_id=ticket_id, notification=notification(ticket_id, "CUST002"),
                                       priority="low")
    output = run_delivery(request, dapr_client=dapr, store=store, customers=StateStore(dapr, "customer-state"),
                          settings=settings)
    assert (output.status, output.attempts) == ("sent", 1)
    [summary] = wait_for_mails(service, ticket_id)
    assert [to["Address"] for to in summary["To"]] == ["dev@techstart.example"]


def test_a_live_claim_blocks_a_second_sender_and_an_expired_one_is_verified_first(service, dapr, store, settings):
    """What a crashed (or still running) attempt leaves: a `sending` claim with a lease. Once
    the lease is over, the mail server's log (the real Mailpit API) decides whether to send."""
    ticket_id = new_ticket()
    key = delivery_key(f"{ticket_id}:notification")
    now = datetime.now(timezone.utc)
    claim = {"notification_id": f"{ticket_id}:notification", "ticket_id": ticket_id, "status": "sending",
             "attempts": 1, "claimed_at": now.isoformat(),
             "lease_until": (now + timedelta(seconds=60)).isoformat()}
    store.save(key, claim)
    blocked = deliver_notification(dapr, store, settings, notification(ticket_id), "ops@acme.example")
    assert blocked.status == "failed" and blocked.reason.startswith("in_progress")
    assert mails_for(service, ticket_id) == []

    store.save(key, {**claim, "lease_until": (now - timedelta(seconds=1)).isoformat()})
    # Without a log to ask, nobody can tell whether attempt 1 mailed it: nothing is sent.
    unsure = deliver_notification(dapr, store, settings, notification(ticket_id), "ops@acme.example")
    assert unsure.status == "uncertain" and "attempt 1" in unsure.reason
    sent_log = MailpitSentLog(service.stack.mailpit_url)
    taken_over = deliver_notification(dapr, store, settings, notification(ticket_id), "ops@acme.example",
                                      sent_log=sent_log)
    assert (taken_over.status, taken_over.attempts, taken_over.already_sent) == ("sent", 2, False)
    wait_for_mails(service, ticket_id)
    assert len(mails_for(service, ticket_id)) == 1


def test_a_mail_sent_by_an_attempt_that_died_is_found_in_the_log_and_not_sent_again(service, dapr, store, settings):
    """The crash window: the mail server accepted the mail, the attempt died before recording it."""
    ticket_id = new_ticket()
    first = deliver_notification(dapr, store, settings, notification(ticket_id), "ops@acme.example")
    assert first.status == "sent"
    wait_for_mails(service, ticket_id)
    key = delivery_key(f"{ticket_id}:notification")
    record = store.get_value(key)
    expired = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    store.save(key, {**record, "status": "sending", "sent_at": None, "lease_until": expired})
    sent_log = MailpitSentLog(service.stack.mailpit_url)
    again = deliver_notification(dapr, store, settings, notification(ticket_id), "ops@acme.example",
                                 sent_log=sent_log)
    assert (again.status, again.already_sent, again.confirmed_by) == ("sent", True, "mail log")
    assert store.get_value(key)["status"] == "sent"
    assert len(mails_for(service, ticket_id)) == 1
    # Another notification's reference is not this one's: the log tells them apart.
    assert not sent_log.accepted(delivery_reference(f"{ticket_id}:notification:other"))


def test_the_sidecar_loaded_the_binding_and_its_timeout(service):
    with service.sidecar() as sidecar:
        metadata = sidecar.get("/v1.0/metadata").json()
    components = {c["name"]: c["type"] for c in metadata["components"]}
    assert components["customer-email"] == "bindings.smtp"
    log = (service.stack.log_dir / "daprd.log").read_text()
    assert any("customer-email-resiliency" in json.loads(line).get("msg", "")
               for line in log.splitlines() if line.startswith("{")), "resiliency policy not loaded"


# -- end to end: the ticket workflow mails the customer ------------------------------------------
def file_and_approve(service, ticket_id: str, customer_id: str, final_solution: str | None = None) -> dict:
    from tests.support.harness import wait_for_stage

    with service.client() as api:
        filed = api.post("/support/ticket", json={
            "ticket_id": ticket_id, "customer_id": customer_id,
            "description": "Production checkout is down: the sidecar gets connection refused on port 5000"})
        assert filed.status_code == 202, filed.text
        wait_for_stage(api, ticket_id, "awaiting_approval")
        body = {"approved": True, **({"final_solution": final_solution} if final_solution else {})}
        assert api.post(f"/support/approve/{ticket_id}", json=body).json()["status"] == "accepted"
        return poll(lambda: api.get(f"/support/status/{ticket_id}").json(),
                    lambda s: s["stage"] in ("completed", "escalated"), 90)


def test_an_approved_tickets_mail_arrives_once_with_the_final_solution(service):
    ticket_id = "MAIL-E2E-1"
    done = file_and_approve(service, ticket_id, "CUST001", final_solution="Set dapr.io/app-port to 5000.")
    assert done["stage"] == "completed" and done["output"]["delivery"]["status"] == "sent"
    [summary] = wait_for_mails(service, ticket_id)
    message = mailpit_message(service, summary["ID"])
    assert "Set dapr.io/app-port to 5000." in message["Text"]
    with service.client() as api:
        kinds = [e["kind"] for e in api.get(f"/support/tickets/{ticket_id}/timeline").json()["events"]]
    assert kinds[-4:] == ["notification_sent", "delivered", "case_indexed", "finished"]
    assert len(mails_for(service, ticket_id)) == 1


def test_a_ticket_whose_mail_server_is_down_is_mailed_once_when_it_is_back(service):
    ticket_id = "MAIL-E2E-DOWN"
    assert stop_process("mailpit", service.stack.run_dir)
    restarted = False
    try:
        with service.client() as api:
            assert api.post("/support/ticket", json={
                "ticket_id": ticket_id, "customer_id": "CUST002",
                "description": "Workflow timers never fire on our staging cluster"}).status_code == 202
            from tests.support.harness import wait_for_stage

            wait_for_stage(api, ticket_id, "awaiting_approval")
            assert api.post(f"/support/approve/{ticket_id}", json={"approved": True}).status_code == 202
            # The first attempt fails while the server is down; the workflow's retries go on.
            poll(lambda: store_record(service, f"delivery:{ticket_id}:notification:resolved"),
                 lambda r: r is not None and r.get("attempts", 0) >= 1, 60)
            service.stack.start_one("mailpit")
            restarted = True
            done = poll(lambda: api.get(f"/support/status/{ticket_id}").json(),
                        lambda s: s["stage"] in ("completed", "escalated"), 150)
    finally:
        if not restarted:
            service.stack.start_one("mailpit")
    assert done["stage"] == "completed" and done["output"]["delivery"]["attempts"] >= 2
    wait_for_mails(service, ticket_id)
    assert len(mails_for(service, ticket_id)) == 1


def test_a_customer_with_no_address_is_escalated_to_a_person(service, dapr):
    StateStore(dapr, "customer-state").save("CUST-NOADDR", {"customer_id": "CUST-NOADDR", "name": "No Address Inc",
                                                            "plan": "enterprise"})
    done = file_and_approve(service, "MAIL-E2E-NOADDR", "CUST-NOADDR")
    assert done["stage"] == "escalated" and "no_address" in done["escalations"]
    assert mails_for(service, "MAIL-E2E-NOADDR") == []


def store_record(service, key):
    return service.state("analysis-state", key)
