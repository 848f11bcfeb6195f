"""Activity: triage a ticket — customer and systems from the state stores, entitlement and SLA
from the plan, category and priority from the ticket text, whether the knowledge base covers it,
and the knowledge-base queries the expert step will run. Reads only: safe to retry."""

from __future__ import annotations

from datetime import datetime

from dapr.ext.workflow import WorkflowActivityContext

from app.activities import deps
from app.core.logging import ticket_logger
from app.domain.customer import Customer, SystemInfo
from app.expert.queries import build_kb_queries
from app.triage.classify import classify_ticket
from app.triage.entitlement import decide_entitlement
from app.triage.summary import summarize
from app.workflows.contracts import TicketWorkflowInput, TriageResult


def triage_ticket(ctx: WorkflowActivityContext, ticket: TicketWorkflowInput) -> TriageResult:
    services = deps.current()
    customer_raw = services.customers.get_value(ticket.customer_id)
    system_raw = services.systems.get_value(ticket.customer_id)
    customer = Customer.model_validate(customer_raw) if customer_raw else None
    system = SystemInfo.model_validate(system_raw) if system_raw else None

    classification = classify_ticket(ticket.description)
    entitlement = decide_entitlement(customer.plan if customer else None, classification.priority,
                                     datetime.fromisoformat(ticket.filed_at),
                                     services.settings.sla_override_for(ticket.customer_id))
    system_info = system.model_dump(exclude={"customer_id"}) if system else None
    result = TriageResult(
        ticket_id=ticket.ticket_id,
        customer_id=ticket.customer_id,
        customer_name=customer.name if customer else None,
        plan=customer.plan if customer else None,
        entitled=entitlement.entitled,
        entitlement_reason=entitlement.reason,
        sla=entitlement.sla,
        category=classification.category,
        priority=classification.priority,
        summary=summarize(ticket.description),
        system_info=system_info,
        kb_queries=build_kb_queries(ticket.description, classification.category, system_info),
        signals=classification.signals,
        in_scope=classification.in_scope,
        scope_score=classification.scope_score,
        scope_reason=classification.scope_reason or None,
    )
    ticket_logger(__name__, ticket.ticket_id).info(
        "triaged", extra={"category": result.category, "priority": result.priority, "entitled": result.entitled})
    return result
