"""Activity: publish an escalation on `ticket-escalations` (once per ticket and reason)."""

from __future__ import annotations

from datetime import datetime, timezone

from dapr.ext.workflow import WorkflowActivityContext

from app.core import clients
from app.core.config import get_settings
from app.core.logging import ticket_logger
from app.messaging import publish_once
from app.services.ticket_records import event, record_events


def escalate_ticket(ctx: WorkflowActivityContext, request: dict) -> dict:
    settings = get_settings()
    ticket_id, reason = request["ticket_id"], request["reason"]
    escalation = {
        "ticket_id": ticket_id,
        "reason": reason,
        "priority": request.get("priority"),
        "plan": request.get("plan"),
        "customer_id": request.get("customer_id"),
        "overdue_by_seconds": request.get("overdue_by_seconds"),
        "escalated_at": datetime.now(timezone.utc).isoformat(),
    }
    published = publish_once(clients.dapr_client(), clients.analysis_store(), settings.pubsub_name,
                             settings.topic_escalations, f"{ticket_id}:escalation:{reason}", escalation)
    record_events(clients.analysis_store(), ticket_id, [
        event(f"escalated:{reason}", "escalated", "sla-monitor" if reason == "sla_breach" else "workflow",
              reason=reason, overdue_by_seconds=escalation["overdue_by_seconds"])], escalated=True)
    ticket_logger(__name__, ticket_id).warning("ticket escalated",
                                               extra={"reason": reason, "published": published})
    return escalation
