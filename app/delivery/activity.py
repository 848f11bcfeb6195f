"""The body of the workflow activity `deliver_notification`, without its registration: reads the
customer's contact email, delivers, and turns the outcome into what the workflow acts on."""

from __future__ import annotations

from dapr.clients import DaprClient

from app.core.config import Settings
from app.delivery.email import DeliveryFailed, NoDeliveryAddress, deliver_notification
from app.delivery.message import customer_email
from app.delivery.models import DeliverNotificationInput, DeliverNotificationOutput
from app.delivery.sent_log import SentLog
from app.store import StateStore


def run_delivery(request: DeliverNotificationInput, *, dapr_client: DaprClient, store: StateStore,
                 customers: StateStore, settings: Settings,
                 sent_log: SentLog | None = None) -> DeliverNotificationOutput:
    """`sent` (now or earlier), `no_address` or `uncertain` (escalate now). Raises DeliveryFailed for a
    failed send, so the workflow's retry policy retries it with backoff and, after the last
    retry, the workflow sees a failed task and escalates."""
    notification = request.notification
    customer = customers.get_value(notification.customer_id) if notification.customer_id else None
    try:
        result = deliver_notification(dapr_client, store, settings, notification.model_dump(),
                                      customer_email(customer), priority=request.priority,
                                      sent_log=sent_log)
    except NoDeliveryAddress as error:
        return DeliverNotificationOutput(
            notification_id=notification.notification_id or f"{notification.ticket_id}:notification",
            ticket_id=notification.ticket_id, status="no_address", reason=str(error))
    if result.status == "uncertain":
        return DeliverNotificationOutput(notification_id=result.notification_id, ticket_id=result.ticket_id,
                                         status="uncertain", attempts=result.attempts, reason=result.reason)
    if not result.delivered:
        raise DeliveryFailed(result)
    return DeliverNotificationOutput(notification_id=result.notification_id, ticket_id=result.ticket_id,
                                     status="sent", attempts=result.attempts, sent_at=result.sent_at,
                                     already_sent=result.already_sent)
