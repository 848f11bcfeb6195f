"""Activity: deliver the customer notification by email through the `customer-email` output
binding (bindings.smtp), once per notification id (app/delivery/email.py)."""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from app.activities import deps
from app.activities.stored_records import stored_notification
from app.delivery.activity import run_delivery
from app.workflows.contracts import DeliverNotificationInput, DeliverNotificationOutput


def deliver_notification(ctx: WorkflowActivityContext, request: DeliverNotificationInput) -> DeliverNotificationOutput:
    services = deps.current()
    if request.notification is None:
        request = request.model_copy(update={
            "notification": stored_notification(services.records, request.ticket_id, request.kind), "kind": None})
    return run_delivery(request, dapr_client=services.dapr, store=services.records, customers=services.customers,
                        settings=services.settings, sent_log=services.sent_log)
