"""Sends a customer notification by email through the Dapr output binding (bindings.smtp),
once per notification id.

The delivery record `delivery:{notification_id}` makes a repeat send nothing:

1. read the record: `sent` -> nothing to do; `sending` with a live lease -> another attempt is
   sending it now, this one fails with that reason (the caller retries later);
2. an earlier attempt whose outcome is unknown (`sending` past its lease: its process died; or
   `unknown`: the call broke after the request may have reached the server) may have mailed it.
   The mail server's log is asked for the mail's reference (app/delivery/sent_log.py): found ->
   recorded `sent`, nothing sent now; not found -> go on. No log configured -> `uncertain`:
   the workflow asks a person rather than mail the customer twice;
3. claim it: write `sending` with a lease, under the record's ETag (or insert-if-absent for the
   first attempt), so two concurrent attempts cannot both claim the same version;
4. send through the binding;
5. write `sent`, or `failed` with the binding's reason (`unknown` for a broken call).

bindings.smtp cannot set a Message-ID for the server to deduplicate on; the reference in the
body (message.delivery_reference) is what step 2 searches for.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal

import grpc
from dapr.clients import DaprClient

from app.core.config import Settings
from app.delivery.message import (binding_metadata, delivery_reference, email_html, email_priority,
                                  email_subject, is_deliverable_address)
from app.delivery.models import DeliveryRecord, DeliveryResult
from app.delivery.sent_log import SentLog
from app.store import ETagConflict, StateStore

_log = logging.getLogger(__name__)
MAX_FAILURES_KEPT = 10
MAX_REASON_LENGTH = 500
_SENT_WRITE_ATTEMPTS = 3
# One mail at a time through the sidecar's binding: bindings.smtp (components-contrib 1.18.0,
# `mergeWithRequestMetadata` on a pointer) writes each request's recipient and subject into the
# component's shared metadata, so two sends at once can swap them; `make test`'s chaos run once
# mailed one ticket's body under another ticket's subject. One app talks to one sidecar.
_BINDING_LOCK = threading.Lock()


class NoDeliveryAddress(Exception):
    """The customer has no contact email: a person must reach them (escalate)."""

    def __init__(self, ticket_id: str, customer_id: str | None, problem: str = "has no contact email"):
        self.ticket_id, self.customer_id = ticket_id, customer_id
        super().__init__(f"customer {customer_id or '(unknown)'} {problem}: the notification of "
                         f"ticket {ticket_id} cannot be emailed, a person must reach the customer")


class InvalidDeliveryAddress(NoDeliveryAddress):
    """The contact email is not one plain address (escalated like a missing one)."""

    def __init__(self, ticket_id: str, customer_id: str | None):
        super().__init__(ticket_id, customer_id, "has a contact email that is not a single valid address")


class DeliveryFailed(Exception):
    """A failed attempt, raised by callers that want the workflow's retry policy to retry."""

    def __init__(self, result: DeliveryResult):
        self.result = result
        super().__init__(f"delivery of {result.notification_id} failed (attempt {result.attempts}): "
                         f"{result.reason}")


def notification_id_of(notification: dict) -> str:
    """The notification's id: its own, or the id it is published under on customer-notifications."""
    return notification.get("notification_id") or f"{notification['ticket_id']}:notification"


def delivery_key(notification_id: str) -> str:
    return f"delivery:{notification_id}"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


Step = Literal["already_sent", "in_progress", "verify", "claim"]


def next_step(record: dict | None, now: datetime) -> Step:
    """What an attempt does, given the delivery record it read."""
    if record is None:
        return "claim"
    status = record.get("status")
    if status == "sent":
        return "already_sent"
    if status == "sending":
        lease_until = record.get("lease_until")
        live = lease_until and now < datetime.fromisoformat(lease_until)
        return "in_progress" if live else "verify"
    if status == "unknown":
        return "verify"
    return "claim"


# A broken call: the request may have reached the sidecar and the mail server.
_UNKNOWN_OUTCOME = {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                    grpc.StatusCode.UNAVAILABLE}


def outcome_unknown(error: BaseException) -> bool:
    """True when a failed binding call may still have sent the mail. A sidecar that refused the
    connection never got the request."""
    code = error.code() if isinstance(error, grpc.RpcError) and hasattr(error, "code") else None
    if code not in _UNKNOWN_OUTCOME:
        return False
    text = failure_reason(error).lower()
    return not (code == grpc.StatusCode.UNAVAILABLE and ("connection refused" in text or "failed to connect" in text))


def failure_reason(error: BaseException) -> str:
    """The binding's own words (gRPC details), without the stack, bounded in length."""
    details = error.details() if isinstance(error, grpc.RpcError) and hasattr(error, "details") else None
    text = " ".join(str(details or error).split()) or type(error).__name__
    return text[:MAX_REASON_LENGTH]


def deliver_notification(dapr_client: DaprClient, store: StateStore, settings: Settings,
                         notification: dict, to_address: str | None, *, priority: str | None = None,
                         sent_log: SentLog | None = None,
                         now: Callable[[], datetime] = utc_now) -> DeliveryResult:
    """Emails `notification` (a stored notification: ticket_id, subject, body, customer_id) to
    `to_address` through the binding `settings.email_binding`, at most once per notification id.

    Returns `sent` (also when an earlier call sent it: `already_sent`, nothing sent now),
    `failed` with the reason, or `uncertain` (an earlier attempt may have sent it and there is no
    `sent_log` to ask). Raises SentLogUnavailable when the log could not be asked, and
    NoDeliveryAddress / InvalidDeliveryAddress before anything is recorded or sent when there is
    no usable address: retrying cannot help, escalate.
    """
    ticket_id = notification["ticket_id"]
    notification_id = notification_id_of(notification)
    customer_id = notification.get("customer_id")
    if to_address is None or not to_address.strip():
        raise NoDeliveryAddress(ticket_id, customer_id)
    to_address = to_address.strip()
    if not is_deliverable_address(to_address):
        raise InvalidDeliveryAddress(ticket_id, customer_id)

    subject = email_subject(notification["subject"], ticket_id)
    key = delivery_key(notification_id)
    reference = delivery_reference(notification_id)
    claimed = _claim(store, key, notification_id, ticket_id, subject, settings.email_delivery_lease, now,
                     reference, sent_log)
    if isinstance(claimed, DeliveryResult):
        return claimed

    log = logging.LoggerAdapter(_log, {"ticket_id": ticket_id})
    try:
        with _BINDING_LOCK:
            dapr_client.invoke_binding(
                settings.email_binding, "create", data=email_html(notification["body"], ticket_id, reference),
                binding_metadata=binding_metadata(to_address, subject, settings.email_from,
                                                  email_priority(priority)))
    except grpc.RpcError as error:  # DaprGrpcError: the binding (or the sidecar) failed
        reason = failure_reason(error)
        unknown = outcome_unknown(error)
        _record_failure(store, key, claimed, reason, now(), status="unknown" if unknown else "failed")
        log.warning("email delivery failed", extra={"notification_id": notification_id, "outcome_unknown": unknown,
                                                    "attempt": claimed["attempts"], "reason": reason})
        return DeliveryResult(notification_id=notification_id, ticket_id=ticket_id, status="failed",
                              attempts=claimed["attempts"], reason=reason)

    sent_at = now().isoformat()
    _record_sent(store, key, {**claimed, "status": "sent", "sent_at": sent_at, "lease_until": None,
                              "last_error": None})
    log.info("email delivered", extra={"notification_id": notification_id, "attempt": claimed["attempts"]})
    return DeliveryResult(notification_id=notification_id, ticket_id=ticket_id, status="sent",
                          attempts=claimed["attempts"], sent_at=sent_at)


def _claim(store: StateStore, key: str, notification_id: str, ticket_id: str, subject: str,
           lease_seconds: float, now: Callable[[], datetime], reference: str,
           sent_log: SentLog | None) -> dict | DeliveryResult:
    """The claimed record, or the result that ends this attempt without sending."""
    for _ in range(5):
        current, etag = store.get(key)
        at = now()
        step = next_step(current, at)
        if step == "verify":
            settled = _settle_unknown(store, key, current, etag, notification_id, ticket_id, reference,
                                      sent_log, at)
            if settled == "conflict":
                continue
            if settled is not None:
                return settled
            # The mail server never got it: send it now.
        if step == "already_sent":
            return DeliveryResult(notification_id=notification_id, ticket_id=ticket_id, status="sent",
                                  attempts=current.get("attempts", 0), sent_at=current.get("sent_at"),
                                  already_sent=True)
        if step == "in_progress":
            return DeliveryResult(
                notification_id=notification_id, ticket_id=ticket_id, status="failed",
                attempts=current.get("attempts", 0),
                reason=f"in_progress: another attempt claimed this delivery at {current.get('claimed_at')}; "
                       f"retry after {current.get('lease_until')}")
        claimed = DeliveryRecord(
            notification_id=notification_id, ticket_id=ticket_id, status="sending",
            attempts=(current or {}).get("attempts", 0) + 1, subject=subject, claimed_at=at.isoformat(),
            lease_until=(at + timedelta(seconds=lease_seconds)).isoformat(),
            last_error=(current or {}).get("last_error"),
            failures=(current or {}).get("failures", [])).model_dump()
        if current is None:
            inserted, _stored = store.insert_if_absent(key, claimed)
            if inserted:
                return claimed
            continue  # another attempt created it first: decide again on what it wrote
        try:
            store.save(key, claimed, etag=etag)
            return claimed
        except ETagConflict:
            continue
    raise ETagConflict(key)


def _settle_unknown(store: StateStore, key: str, current: dict, etag: str | None, notification_id: str,
                    ticket_id: str, reference: str, sent_log: SentLog | None,
                    at: datetime) -> DeliveryResult | Literal["conflict"] | None:
    """An earlier attempt may have mailed it. The result that ends this attempt (recorded
    `sent`, or `uncertain` with no log to ask), "conflict" when the record moved meanwhile, or
    None when the mail server's log shows no such mail (send it)."""
    attempts = current.get("attempts", 0)
    if sent_log is None:
        return DeliveryResult(
            notification_id=notification_id, ticket_id=ticket_id, status="uncertain", attempts=attempts,
            reason=f"attempt {attempts} (claimed at {current.get('claimed_at')}) may have mailed it: its outcome "
                   f"is unknown ({current.get('status')}) and no mail log (EMAIL_SENT_LOG_URL) can tell")
    if not sent_log.accepted(reference):
        return None
    record = {**current, "status": "sent", "sent_at": current.get("sent_at") or at.isoformat(),
              "lease_until": None, "confirmed_by": "mail log"}
    try:
        store.save(key, record, etag=etag)
    except ETagConflict:
        return "conflict"
    _log.info("email found in the mail server's log: not sent again",
              extra={"ticket_id": ticket_id, "notification_id": notification_id, "attempt": attempts})
    return DeliveryResult(notification_id=notification_id, ticket_id=ticket_id, status="sent", attempts=attempts,
                          sent_at=record["sent_at"], already_sent=True, confirmed_by="mail log")


def _record_sent(store: StateStore, key: str, record: dict) -> None:
    """One write, retried briefly: until it lands, a retry after the lease would send again."""
    for attempt in range(1, _SENT_WRITE_ATTEMPTS + 1):
        try:
            store.save(key, record)
            return
        except grpc.RpcError:
            if attempt == _SENT_WRITE_ATTEMPTS:
                _log.error("mail sent but its delivery record could not be written: a retry after "
                           "the lease may send it again", extra={"ticket_id": record["ticket_id"],
                                                                "notification_id": record["notification_id"]})
                raise
            time.sleep(0.2 * attempt)


def _record_failure(store: StateStore, key: str, claimed: dict, reason: str, at: datetime,
                    status: Literal["failed", "unknown"] = "failed") -> None:
    """`failed` (or `unknown`) with the reason, unless another attempt has sent it meanwhile."""
    failure = {"attempt": claimed["attempts"], "at": at.isoformat(), "reason": reason}

    def change(current: Any) -> dict:
        if current is not None and current.get("status") == "sent":
            return current
        base = current or claimed
        return {**base, "status": status, "lease_until": None, "last_error": reason,
                "failures": (base.get("failures", []) + [failure])[-MAX_FAILURES_KEPT:]}

    store.update(key, change)
