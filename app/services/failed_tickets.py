"""A ticket whose workflow failed as a whole is escalated to a person.

A step that fails after its retries is the workflow's to handle: it escalates `system_error` and
tells the customer a person will follow up. A workflow that fails as a whole (its own code
raised, or its replay broke) runs no more code and tells nobody: the runtime just holds it
FAILED. The read model's sweep notices that (app/readmodel/sync.py) and calls this, so the
support team hears of it on `ticket-escalations` like any other escalation, reason
`workflow_failed`, with the runtime's failure message. Published once per ticket (the id
`{ticket}:escalation:workflow_failed`): a repeated call publishes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from app.core.services import Services
from app.messaging import publish_once
from app.services.workflow_gateway import Instance
from app.workflows.contracts import Escalation, escalation_message_id

logger = logging.getLogger(__name__)

REASON = "workflow_failed"
DETAIL_CHARS = 500


class FailedTicketEscalation:
    """Called by the sweep with a failed ticket's read-model row and instance; raises when the
    escalation could not be published, so the sweep tries again on a later turn."""

    def __init__(self, services: Services):
        self.services = services

    def __call__(self, row: dict, instance: Instance) -> bool:
        return publish_sweep_escalation(self.services, row, REASON, instance.failure or "the workflow failed")


def publish_sweep_escalation(services: Services, row: dict, reason: str, detail: str) -> bool:
    """One escalation of the sweep's on `ticket-escalations`, published once per ticket and
    reason (False: published before); raises when the broker or the records store cannot take it."""
    settings = services.settings
    escalation = Escalation(
        ticket_id=row["ticket_id"], reason=reason, message_id=escalation_message_id(row["ticket_id"], reason),
        customer_id=row.get("customer_id"), priority=row.get("priority"), plan=row.get("plan"),
        detail=detail[:DETAIL_CHARS], escalated_at=datetime.now(timezone.utc).isoformat())
    published = publish_once(services.dapr, services.records, settings.pubsub_name,
                             settings.topic_escalations, escalation.message_id, escalation.model_dump(mode="json"))
    if published:
        logger.warning("ticket escalated by the sweep", extra={
            "ticket_id": escalation.ticket_id, "reason": reason, "detail": escalation.detail})
    return published
