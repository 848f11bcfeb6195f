"""Activity: publish an escalation on `ticket-escalations`, once per ticket and reason.

The payload comes whole from the workflow (its clock included), so every retry publishes the
same message under the same id `{ticket}:escalation:{reason}`."""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from app.activities import deps
from app.core.logging import ticket_logger
from app.messaging import publish_once
from app.workflows.contracts import EscalateRequest, Escalation, escalation_message_id


def escalate_ticket(ctx: WorkflowActivityContext, request: EscalateRequest) -> Escalation:
    services = deps.current()
    escalation = Escalation(message_id=escalation_message_id(request.ticket_id, request.reason),
                            **request.model_dump())
    published = publish_once(services.dapr, services.records, services.settings.pubsub_name,
                             services.settings.topic_escalations, escalation.message_id,
                             escalation.model_dump(mode="json"))
    ticket_logger(__name__, request.ticket_id).warning(
        "ticket escalated", extra={"reason": request.reason, "published": published})
    return escalation
