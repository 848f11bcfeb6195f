"""Activity: triage a ticket — customer and systems from the state stores, entitlement and SLA
from the plan, category and priority from the ticket text, and the knowledge-base queries the
expert step will run."""

from __future__ import annotations

from datetime import datetime

from dapr.ext.workflow import WorkflowActivityContext

from app.core import clients
from app.core.config import get_settings
from app.core.logging import ticket_logger
from app.domain.customer import Customer, SystemInfo
from app.domain.ticket import TicketWorkflowInput
from app.domain.triage import TriageResult
from app.expert.queries import build_kb_queries
from app.services.ticket_records import event, record_events
from app.triage.classify import classify_ticket
from app.triage.entitlement import decide_entitlement


def summarize(description: str, limit: int = 160) -> str:
    """First sentence (or line) of the ticket, cut to a readable length."""
    text = " ".join(description.split())
    for stop in (". ", "? ", "! "):
        if stop in text[:limit]:
            text = text[: text.index(stop) + 1]
            break
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def triage_ticket(ctx: WorkflowActivityContext, ticket: dict) -> dict:
    t = TicketWorkflowInput.model_validate(ticket)
    log = ticket_logger(__name__, t.ticket_id)

    customer_raw = clients.customer_store().get_value(t.customer_id)
    system_raw = clients.system_store().get_value(t.customer_id)
    customer = Customer.model_validate(customer_raw) if customer_raw else None
    system = SystemInfo.model_validate(system_raw) if system_raw else None

    classification = classify_ticket(t.description)
    entitlement = decide_entitlement(customer.plan if customer else None, classification.priority,
                                     datetime.fromisoformat(t.filed_at), get_settings().sla_override)
    system_info = system.model_dump(exclude={"customer_id"}) if system else None
    result = TriageResult(
        ticket_id=t.ticket_id,
        customer_id=t.customer_id,
        customer_name=customer.name if customer else None,
        plan=customer.plan if customer else None,
        entitled=entitlement.entitled,
        entitlement_reason=entitlement.reason,
        sla=entitlement.sla,
        category=classification.category,
        priority=classification.priority,
        summary=summarize(t.description),
        system_info=system_info,
        kb_queries=build_kb_queries(t.description, classification.category, system_info),
    )
    record_events(clients.analysis_store(), t.ticket_id,
                  [event("triaged", "triaged", "triage", category=result.category, priority=result.priority,
                         entitled=result.entitled, plan=result.plan)],
                  stage="expert_analysis" if result.entitled else "notifying", priority=result.priority,
                  category=result.category, plan=result.plan, entitled=result.entitled,
                  sla_due=result.sla.first_response_due if result.sla else None)
    log.info("triaged", extra={"category": result.category, "priority": result.priority,
                               "entitled": result.entitled})
    return result.model_dump()
