"""Activity: store a proposed solution in analysis-state and announce it on `solution-ready`:
the expert agent's proposal when the workflow passes one, else one composed offline from the
knowledge-base results (saying why the agent's is missing, when it failed).

Idempotent per (ticket, revision): a retry finds the stored proposal and reuses it, and the
announcement carries the id `{ticket}:solution-ready:{revision}`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from dapr.ext.workflow import WorkflowActivityContext

from app.core import clients
from app.core.config import get_settings
from app.core.logging import ticket_logger
from app.expert.compose import compose_offline_proposal, fuse_results
from app.knowledge.search import SearchHit
from app.messaging import publish_once
from app.services.ticket_records import event, record_events


def analysis_key(ticket_id: str) -> str:
    return f"analysis:{ticket_id}"


def propose_solution(ctx: WorkflowActivityContext, request: dict) -> dict:
    settings = get_settings()
    ticket, triage, revision = request["ticket"], request["triage"], int(request.get("revision", 0))
    ticket_id = ticket["ticket_id"]
    log = ticket_logger(__name__, ticket_id)
    store = clients.analysis_store()

    stored = store.get_value(analysis_key(ticket_id))
    computed = False  # stored now: no earlier attempt can have announced it
    if stored and stored.get("revision") == revision:
        proposal = stored["proposal"]
    else:
        computed = True
        proposal = request.get("proposal") or _offline_proposal(request)
        record = {
            "ticket_id": ticket_id,
            "revision": revision,
            "proposal": proposal,
            "revision_notes": request.get("notes"),
            "kb_queries": request.get("queries", []),
            "created_at": datetime.now(timezone.utc).isoformat(),
            "previous": (stored or {}).get("previous", []) + ([stored] if stored else []),
        }
        for old in record["previous"]:
            old.pop("previous", None)
        store.save(analysis_key(ticket_id), record)

    published = publish_once(
        clients.dapr_client(), store, settings.pubsub_name, settings.topic_solution_ready,
        f"{ticket_id}:solution-ready:{revision}",
        {"ticket_id": ticket_id, "priority": triage["priority"], "category": triage["category"],
         "revision": revision, "proposal": proposal},
        first_attempt=computed,
    )
    queries, results = request.get("queries", []), request["search_results"]
    record_events(store, ticket_id, [
        *(event(f"kb_query:{revision}:{i}", "kb_query", "expert", query=q,
                top_articles=[h["slug"] for h in hits[:3]]) for i, (q, hits) in enumerate(zip(queries, results))),
        event(f"analysis_stored:{revision}", "analysis_stored", "expert", revision=revision,
              cited_articles=proposal["cited_articles"]),
        event(f"solution_published:{revision}", "solution_published", "expert", revision=revision,
              topic=settings.topic_solution_ready),
    ], stage="awaiting_approval", awaiting_decision=True, revision=revision)
    log.info("solution proposed", extra={"revision": revision, "published": published,
                                         "cited_articles": proposal["cited_articles"]})
    return proposal


def _offline_proposal(request: dict) -> dict:
    result_lists = [[SearchHit.model_validate(h) for h in hits] for hits in request["search_results"]]
    proposal = compose_offline_proposal(request["ticket"]["description"], fuse_results(result_lists),
                                        notes=request.get("notes"))
    if request.get("llm_fallback_reason"):
        proposal["llm_fallback_reason"] = request["llm_fallback_reason"]
    return proposal
