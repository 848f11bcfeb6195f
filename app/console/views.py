"""What the console's pages show, gathered from the read model, the runtime and the stores:
the inbox's rows and the ticket page. No HTML here (templates/), no routing (routes.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from app.core.config import Settings
from app.core.security import Principal
from app.domain.stored import analysis_key, notification_key
from app.knowledge.articles import load_articles
from app.readmodel.store import ReadModel
from app.services import operations
from app.services.tickets import TicketNotFound, stage_of, ticket_instance, to_status
from app.services.workflow_gateway import WorkflowGateway
from app.store import StateStore
from app.workflows.contracts import FINAL_STAGES, Activities

INBOX_FILTERS = ("stage", "priority", "customer_id", "plan", "escalated")
# How many waiting tickets (most urgent first) and how many others (newest first) the inbox shows.
WAITING_LIMIT = 200
OTHERS_LIMIT = 50
NOTIFICATION_KINDS = ("resolved", "not_entitled", "escalated", "cancelled")


def inbox_filters(params: dict[str, str]) -> dict[str, Any]:
    """The read-model filters of the inbox's query string (blank ones dropped)."""
    filters: dict[str, Any] = {}
    for name in INBOX_FILTERS:
        value = (params.get(name) or "").strip()
        if not value:
            continue
        filters[name] = value in ("1", "true", "on", "yes") if name == "escalated" else value
    return filters


def inbox_rows(read_model: ReadModel, records: StateStore,
               filters: dict[str, Any], q: str | None, now: datetime | None = None) -> dict:
    """Tickets waiting for a decision first, the most urgent SLA first; then the others, newest
    first. Rows are the read model's (as the API's list is) and carry who holds them."""
    now = now or datetime.now(timezone.utc)
    waiting_filters = {**filters, "awaiting_decision": True}
    waiting, _ = read_model.list(waiting_filters, WAITING_LIMIT, text=q or None)
    others, _ = read_model.list(filters, OTHERS_LIMIT + len(waiting), text=q or None)
    waiting_ids = {r["ticket_id"] for r in waiting}
    others = [r for r in others if r["ticket_id"] not in waiting_ids][:OTHERS_LIMIT]
    # Corrections by the runtime land through the read model's sweep; the pushed signature then
    # reloads the page, and a row no longer waiting moves to the others on that reload.
    far = datetime.max.replace(tzinfo=timezone.utc)
    waiting.sort(key=lambda r: (operations.parse_time(r.get("sla_due")) or far, r.get("awaiting_since") or ""))
    claims = operations.claims_of(records, [r["ticket_id"] for r in waiting + others])
    return {"waiting": [_decorate(r, claims, now) for r in waiting],
            "others": [_decorate(r, claims, now) for r in others]}


def _decorate(row: dict, claims: dict, now: datetime) -> dict:
    since, due = operations.parse_time(row.get("awaiting_since")), operations.parse_time(row.get("sla_due"))
    return {**row, "claim": claims.get(row["ticket_id"]),
            "waiting_seconds": (now - since).total_seconds() if since and row.get("awaiting_decision") else None,
            "sla_seconds_left": (due - now).total_seconds() if due else None}


@dataclass
class TicketPage:
    ticket_id: str
    status: Any  # TicketStatus
    instance: Any
    row: dict | None
    customer: dict | None
    systems: dict | None
    triage: dict | None
    revisions: list[dict]
    notifications: list[dict]
    timeline: list[dict]
    claim: dict | None
    articles: dict[str, str]  # slug -> title, for the cited ones
    can_decide: bool
    can_cancel: bool
    can_claim: bool
    live_version: str
    decide_version: str


def _triage_of(instance, history: list[dict]) -> dict | None:
    triage = instance.output.get("triage") if instance.runtime_status == "completed" else None
    if triage:
        return triage
    done = [e for e in history if e["kind"] == "taskCompleted"
            and e.get("name") in (Activities.TRIAGE, Activities.STRUCTURE_TRIAGE) and isinstance(e.get("output"), dict)]
    return done[-1]["output"] if done else None


def timeline_of(instance, read_model: ReadModel, records: StateStore) -> list[dict]:
    """The ticket's timeline as GET /support/tickets/{id}/timeline gives it."""
    events = read_model.events(instance.instance_id)
    if instance.runtime_status in ("failed", "terminated", "suspended"):
        events.append({"key": instance.runtime_status, "kind": instance.runtime_status, "actor": "runtime",
                       "at": instance.last_updated_at or "",
                       "details": {"failure": instance.failure} if instance.failure else {}})
    return operations.merge_timeline(events, operations.audit_timeline_events(records, instance.instance_id))


def ticket_page(workflows: WorkflowGateway, read_model: ReadModel, records: StateStore, customers: StateStore,
                systems: StateStore, settings: Settings, principal: Principal, ticket_id: str) -> TicketPage:
    instance = ticket_instance(workflows, ticket_id)
    if principal.role == "client" and instance.input.get("filed_by") != principal.name:
        raise TicketNotFound(f"no ticket {ticket_id!r}")  # a client sees only its own
    status = to_status(instance, records)
    history = operations.render_history(workflows.history(ticket_id))
    revision = status.revision
    keys = [analysis_key(ticket_id, r) for r in range(revision + 1)]
    decision_keys = [f"decision:{ticket_id}:{r}" for r in range(revision + 1)]
    note_keys = [notification_key(ticket_id, kind) for kind in NOTIFICATION_KINDS]
    stored = records.get_many(keys + decision_keys + note_keys)
    revisions = []
    for r in range(revision + 1):
        analysis = stored.get(analysis_key(ticket_id, r))
        if analysis:
            revisions.append({**analysis, "decision": stored.get(f"decision:{ticket_id}:{r}")})
    notifications = [stored[k] for k in note_keys if k in stored]
    customer_id = instance.input.get("customer_id")
    customer = customers.get_value(customer_id) if customer_id else None
    system_info = systems.get_value(customer_id) if customer_id else None
    claim = operations.claims_of(records, [ticket_id]).get(ticket_id)
    timeline = timeline_of(instance, read_model, records)
    catalogue = load_articles()
    cited = {slug for rev in revisions for slug in rev["proposal"].get("cited_articles", [])}
    stage = stage_of(instance)
    waiting = status.awaiting_decision and instance.runtime_status == "running"
    row = read_model.get(ticket_id)
    return TicketPage(
        ticket_id=ticket_id, status=status, instance=instance, row=row, customer=customer, systems=system_info,
        triage=_triage_of(instance, history), revisions=revisions, notifications=notifications,
        timeline=timeline if principal.role != "client" else [], claim=claim,
        articles={slug: catalogue[slug].title for slug in cited if slug in catalogue},
        can_decide=principal.role == "engineer" and waiting,
        can_cancel=principal.role in ("engineer", "operator") and stage not in FINAL_STAGES
        and stage != "notifying" and instance.runtime_status in ("running", "suspended", "pending"),
        can_claim=principal.role == "engineer" and stage not in FINAL_STAGES,
        live_version=f"{instance.runtime_status}/{stage}/{instance.last_updated_at}/{len(timeline)}/"
                     f"{(claim or {}).get('holder')}/{len(notifications)}",
        decide_version=f"{instance.runtime_status}/{stage}/{revision}")
