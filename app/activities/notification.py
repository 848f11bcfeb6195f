"""Activity: write the customer notification, store it, publish it on `customer-notifications`.

Idempotent per (ticket, kind): the first stored notification of a kind wins (an LLM retry
would otherwise write a different text), and it is published under the id
`{ticket}:notification:{kind}`, so a republish is recognised and dropped by subscribers.
"""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from app.activities import deps
from app.activities.stored_records import approved_proposal_text
from app.core.logging import ticket_logger
from app.domain.stored import notification_id, notification_key
from app.messaging import publish_once
from app.notifications.conversation import write_with_llm
from app.notifications.templates import offline_message
from app.workflows.contracts import Notification, NotificationRef, NotifyRequest


def notify_customer(ctx: WorkflowActivityContext, request: NotifyRequest) -> Notification | NotificationRef:
    services = deps.current()
    settings = services.settings
    ticket_id, kind = request.ticket_id, request.kind
    store = services.records

    key = notification_key(ticket_id, kind)
    stored = store.get_value(key)
    created = False
    if stored is None:
        solution = request.solution
        if solution is None and request.solution_revision is not None:
            solution = approved_proposal_text(store, ticket_id, request.solution_revision)
        subject, body = offline_message(kind, request.customer_name, ticket_id, solution=solution,
                                        reason=request.reason)
        generated_by = "offline"
        # The workflow retries an LLM failure, then asks again with use_llm=False.
        if settings.llm_configured and request.use_llm:
            body = write_with_llm(services.dapr, settings.conversation_component, body)
            generated_by = "conversation-api"
        candidate = Notification(ticket_id=ticket_id, notification_id=notification_id(ticket_id, kind),
                                 customer_id=request.customer_id, kind=kind, subject=subject, body=body,
                                 generated_by=generated_by, llm_fallback_reason=request.llm_fallback_reason,
                                 created_at=request.created_at)
        created, stored = store.insert_if_absent(key, candidate.model_dump(mode="json", exclude_none=True))
    notification = Notification.model_validate(stored)
    published = publish_once(services.dapr, store, settings.pubsub_name, settings.topic_notifications,
                             notification.notification_id, stored, first_attempt=created)
    ticket_logger(__name__, ticket_id).info("customer notified", extra={
        "kind": kind, "published": published, "generated_by": notification.generated_by})
    if request.by_reference:
        return NotificationRef.model_validate(notification.model_dump(exclude={"body"}))
    return notification
