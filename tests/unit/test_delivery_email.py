"""The pure parts of deliver_notification: which step an attempt takes on the record it reads,
failure reasons, notification ids, the address errors (raised before any I/O), settings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from app.core.config import Settings
from app.delivery.email import (DeliveryFailed, InvalidDeliveryAddress, NoDeliveryAddress,
                                deliver_notification, delivery_key, failure_reason, next_step,
                                notification_id_of)
from app.delivery.models import DeliverNotificationInput, DeliveryResult

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def sending(lease_until: datetime) -> dict:
    return {"status": "sending", "claimed_at": (lease_until - timedelta(seconds=60)).isoformat(),
            "lease_until": lease_until.isoformat(), "attempts": 1}


def test_next_step():
    assert next_step(None, NOW) == "claim"
    assert next_step({"status": "sent", "attempts": 1}, NOW) == "already_sent"
    assert next_step(sending(NOW + timedelta(seconds=1)), NOW) == "in_progress"
    # A claim whose lease ran out belongs to an attempt that crashed or hung: it may have sent
    # the mail, so it is verified first (tests/unit/test_delivery_unknown_outcome.py).
    assert next_step(sending(NOW - timedelta(seconds=1)), NOW) == "verify"
    assert next_step({"status": "failed", "attempts": 2, "lease_until": None}, NOW) == "claim"


def test_ids():
    assert notification_id_of({"ticket_id": "TKT-1"}) == "TKT-1:notification"
    assert notification_id_of({"ticket_id": "TKT-1", "notification_id": "n-7"}) == "n-7"
    assert delivery_key("TKT-1:notification") == "delivery:TKT-1:notification"


class _BindingError(grpc.RpcError):
    def details(self):
        return ("error invoking output binding customer-email: error from smtp binding, sending email "
                "failed: dial tcp 127.0.0.1:1025: connect: connection refused\n" + "x" * 600)


def test_failure_reason_is_the_binding_error_on_one_line_and_bounded():
    reason = failure_reason(_BindingError())
    assert reason.startswith("error invoking output binding customer-email: error from smtp binding")
    assert "connection refused" in reason and "\n" not in reason and len(reason) == 500
    assert failure_reason(RuntimeError("boom")) == "boom"


@pytest.mark.parametrize("address", [None, "", "   "])
def test_no_address_raises_before_touching_dapr_or_the_store(address):
    with pytest.raises(NoDeliveryAddress) as raised:
        deliver_notification(None, None, Settings(), {"ticket_id": "TKT-5", "customer_id": "CUST9",
                                                      "subject": "s", "body": "b"}, address)
    assert not isinstance(raised.value, InvalidDeliveryAddress)
    assert "CUST9" in str(raised.value) and "TKT-5" in str(raised.value)
    assert raised.value.ticket_id == "TKT-5" and raised.value.customer_id == "CUST9"


def test_invalid_address_is_a_no_address_error():
    with pytest.raises(InvalidDeliveryAddress, match="not a single valid address"):
        deliver_notification(None, None, Settings(), {"ticket_id": "TKT-5", "subject": "s", "body": "b"},
                             "a@b.example;c@d.example")


def test_delivery_failed_carries_the_result():
    result = DeliveryResult(notification_id="TKT-1:notification", ticket_id="TKT-1", status="failed",
                            attempts=2, reason="connection refused")
    error = DeliveryFailed(result)
    assert error.result is result and "attempt 2" in str(error) and "connection refused" in str(error)
    assert not result.delivered


def test_settings_defaults_and_lease_duration(monkeypatch):
    monkeypatch.setenv("EMAIL_DELIVERY_LEASE", "90s")
    monkeypatch.setenv("EMAIL_FROM", "Help <help@x.example>")
    settings = Settings(_env_file=None)
    assert settings.email_delivery_lease == 90 and settings.email_from == "Help <help@x.example>"
    assert settings.email_binding == "customer-email"


def test_activity_input_ignores_extra_notification_fields():
    request = DeliverNotificationInput.model_validate({"ticket_id": "TKT-1", "notification": {
        "ticket_id": "TKT-1", "customer_id": "CUST001", "kind": "resolved", "subject": "s", "body": "b",
        "generated_by": "offline", "created_at": "2026-01-01T00:00:00+00:00"}, "priority": "high"})
    assert request.notification.ticket_id == "TKT-1" and request.priority == "high"


def test_activity_input_refuses_another_tickets_notification():
    with pytest.raises(ValueError, match="notification of ticket TKT-2 given for ticket TKT-1"):
        DeliverNotificationInput.model_validate({"ticket_id": "TKT-1", "notification": {
            "ticket_id": "TKT-2", "subject": "s", "body": "b"}})
