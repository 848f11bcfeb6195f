"""Activity: write the customer notification, store it, publish it on `customer-notifications`.

Idempotent per ticket: the first stored notification wins (an LLM retry would otherwise write a
different text), and the message id `{ticket}:notification` lets subscribers drop a republish.
"""

from __future__ import annotations

from datetime import datetime, timezone

from dapr.ext.workflow import WorkflowActivityContext

from app.core import clients
from app.core.config import get_settings
from app.core.logging import ticket_logger
from app.messaging import publish_once
from app.notifications.conversation import write_with_llm
from app.notifications.templates import offline_message
from app.services.ticket_records import event, record_events

FINAL_STAGE = {"resolved": "completed", "not_entitled": "not_entitled", "escalated": "escalated",
               "cancelled": "cancelled"}


def notification_key(ticket_id: str) -> str:
    return f"notification:{ticket_id}"


def notify_customer(ctx: WorkflowActivityContext, request: dict) -> dict:
    settings = get_settings()
    ticket_id, kind = request["ticket_id"], request["kind"]
    log = ticket_logger(__name__, ticket_id)
    store = clients.analysis_store()

    record = store.get_value(notification_key(ticket_id))
    created = False
    if record is None:
        subject, body = offline_message(kind, request.get("customer_name"), ticket_id,
                                        solution=request.get("solution"), reason=request.get("reason"))
        generated_by = "offline"
        # The workflow retries an LLM failure, then asks again with use_llm=False.
        if settings.llm_configured and request.get("use_llm", True):
            body = write_with_llm(clients.dapr_client(), settings.conversation_component, body)
            generated_by = "conversation-api"
        candidate = {
            "ticket_id": ticket_id,
            "customer_id": request.get("customer_id"),
            "kind": kind,
            "subject": subject,
            "body": body,
            "generated_by": generated_by,
            "llm_fallback_reason": request.get("llm_fallback_reason"),
            "created_at": datetime.now(timezone.utc).isoformat(),
        }
        created, record = store.insert_if_absent(notification_key(ticket_id), candidate)

    published = publish_once(clients.dapr_client(), store, settings.pubsub_name,
                             settings.topic_notifications, f"{ticket_id}:notification", record,
                             first_attempt=created)
    record_events(store, ticket_id, [event("notification_sent", "notification_sent", "notifier",
                                           kind=record["kind"], generated_by=record["generated_by"])],
                  stage=FINAL_STAGE[record["kind"]], awaiting_decision=False, status="completed")
    log.info("customer notified", extra={"kind": record["kind"], "published": published,
                                         "generated_by": record["generated_by"]})
    return record
