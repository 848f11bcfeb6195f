"""A delivery whose earlier attempt may have mailed the customer: the mail server's log decides,
and without a log the notification goes to a person. Never a second mail."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from app.core.config import Settings
from app.delivery.email import deliver_notification, delivery_key, next_step, outcome_unknown
from app.delivery.message import delivery_reference, email_html
from app.delivery.sent_log import SentLogUnavailable
from tests.unit.memory_state_store import MemoryStateStore
from tests.unit.grpc_errors import RpcFailure

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
NOTIFICATION = {"ticket_id": "TKT-9", "notification_id": "TKT-9:notification:resolved", "customer_id": "C1",
                "subject": "Your ticket TKT-9 is resolved", "body": "Restart the sidecar."}
KEY = delivery_key(NOTIFICATION["notification_id"])
SETTINGS = Settings(_env_file=None, email_delivery_lease=60)


class Binding:
    """The DaprClient seam of deliver_notification: records each mail, or raises `error`."""

    def __init__(self, error: BaseException | None = None):
        self.sent: list[str] = []
        self.error = error

    def invoke_binding(self, name, operation, data, binding_metadata):
        if self.error is not None:
            raise self.error
        self.sent.append(data)


class Log:
    def __init__(self, references: set[str] | None = None, down: bool = False):
        self.references, self.down, self.asked = references or set(), down, []

    def accepted(self, reference):
        self.asked.append(reference)
        if self.down:
            raise SentLogUnavailable("the mail server's log did not answer")
        return reference in self.references


def crashed_claim(store: MemoryStateStore, status: str = "sending") -> None:
    """What an attempt that died mid-send leaves: its claim, past its lease."""
    store.save(KEY, {"notification_id": NOTIFICATION["notification_id"], "ticket_id": "TKT-9", "status": status,
                     "attempts": 1, "claimed_at": (NOW - timedelta(seconds=120)).isoformat(),
                     "lease_until": (NOW - timedelta(seconds=60)).isoformat() if status == "sending" else None})


def deliver(store, binding, sent_log):
    return deliver_notification(binding, store, SETTINGS, NOTIFICATION, "ops@acme.example", sent_log=sent_log,
                                now=lambda: NOW)


def test_an_expired_claim_or_a_broken_call_is_verified_not_taken_over():
    expired = {"status": "sending", "lease_until": (NOW - timedelta(seconds=1)).isoformat()}
    assert next_step(expired, NOW) == "verify"
    assert next_step({"status": "unknown"}, NOW) == "verify"
    assert next_step({"status": "failed"}, NOW) == "claim"


def test_the_mail_carries_its_reference_and_no_reference_contains_another():
    reference = delivery_reference("TKT-9:notification:resolved")
    assert f"Reference: {reference}" in email_html("Hello", "TKT-9", reference)
    others = {delivery_reference(f"TKT-{i}:notification:resolved") for i in range(1000)}
    assert len(others) == 1000 and len({len(r) for r in others}) == 1  # fixed length: no prefix of another


@pytest.mark.parametrize("status", ["sending", "unknown"])
def test_found_in_the_mail_log_it_is_recorded_sent_and_not_mailed_again(status):
    store, binding = MemoryStateStore(), Binding()
    crashed_claim(store, status)
    log = Log({delivery_reference(NOTIFICATION["notification_id"])})
    result = deliver(store, binding, log)
    assert (result.status, result.already_sent, result.confirmed_by) == ("sent", True, "mail log")
    assert binding.sent == [] and log.asked == [delivery_reference(NOTIFICATION["notification_id"])]
    record = store.get_value(KEY)
    assert record["status"] == "sent" and record["confirmed_by"] == "mail log" and record["attempts"] == 1
    # Settled: the next call reads `sent` and asks nobody.
    assert deliver(store, binding, log).already_sent and len(log.asked) == 1


def test_absent_from_the_mail_log_it_is_sent_once_with_its_reference():
    store, binding, log = MemoryStateStore(), Binding(), Log()
    crashed_claim(store)
    result = deliver(store, binding, log)
    assert (result.status, result.already_sent, result.attempts) == ("sent", False, 2)
    assert len(binding.sent) == 1 and delivery_reference(NOTIFICATION["notification_id"]) in binding.sent[0]
    assert store.get_value(KEY)["status"] == "sent"


def test_without_a_mail_log_an_unknown_outcome_is_uncertain_and_nothing_is_sent():
    store, binding = MemoryStateStore(), Binding()
    crashed_claim(store)
    result = deliver(store, binding, None)
    assert result.status == "uncertain" and "EMAIL_SENT_LOG_URL" in result.reason
    assert binding.sent == [] and store.get_value(KEY)["status"] == "sending"


def test_a_mail_log_that_does_not_answer_fails_the_attempt_before_any_send():
    store, binding = MemoryStateStore(), Binding()
    crashed_claim(store)
    with pytest.raises(SentLogUnavailable):
        deliver(store, binding, Log(down=True))
    assert binding.sent == [] and store.get_value(KEY)["status"] == "sending"


def test_a_first_attempt_asks_no_log():
    store, binding, log = MemoryStateStore(), Binding(), Log()
    assert deliver(store, binding, log).status == "sent"
    assert log.asked == [] and len(binding.sent) == 1


@pytest.mark.parametrize(("code", "details", "unknown"), [
    (grpc.StatusCode.UNAVAILABLE, "Socket closed", True),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", True),
    (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: Connection refused", False),
    (grpc.StatusCode.INTERNAL, "error invoking output binding customer-email: 550 mailbox unavailable", False),
])
def test_a_broken_call_records_unknown_and_a_refused_one_records_failed(code, details, unknown):
    store = MemoryStateStore()
    error = RpcFailure(code, details)
    assert outcome_unknown(error) is unknown
    result = deliver(store, Binding(error), Log())
    assert result.status == "failed"
    assert store.get_value(KEY)["status"] == ("unknown" if unknown else "failed")


def test_one_mail_at_a_time_goes_through_the_sidecars_binding():
    """bindings.smtp shares one metadata object between requests (components-contrib 1.18.0):
    two sends at once could swap recipients and subjects, so the app never makes two at once."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    class SlowBinding(Binding):
        def __init__(self):
            super().__init__()
            self.active = self.most = 0
            self.lock = threading.Lock()

        def invoke_binding(self, name, operation, data, binding_metadata):
            with self.lock:
                self.active += 1
                self.most = max(self.most, self.active)
            time.sleep(0.02)
            super().invoke_binding(name, operation, data, binding_metadata)
            with self.lock:
                self.active -= 1

    store, binding = MemoryStateStore(), SlowBinding()
    notifications = [{**NOTIFICATION, "ticket_id": f"TKT-{i}", "notification_id": f"TKT-{i}:notification:resolved"}
                     for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda n: deliver_notification(binding, store, SETTINGS, n, "ops@acme.example",
                                                                now=lambda: NOW), notifications))
    assert [r.status for r in results] == ["sent"] * 6 and len(binding.sent) == 6
    assert binding.most == 1
