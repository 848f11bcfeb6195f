"""Activity: store a proposed solution in analysis-state and announce it on `solution-ready`:
the expert agent's proposal when the workflow passes one, else one composed offline from the
knowledge-base results (saying why the agent's is missing, when it failed). Either cites the
past resolutions (app/knowledge/cases.py) of other tickets about the same problem.

Idempotent per (ticket, revision): the first stored proposal of a revision wins (insert if
absent), and the announcement is built from what is stored, with the id
`{ticket}:solution-ready:{revision}`: a retry publishes the same message, which subscribers drop.
"""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from app.activities import deps
from app.core.logging import ticket_logger
from app.domain.stored import analysis_key
from app.expert.compose import compose_offline_proposal, rank_with_past_cases
from app.knowledge.articles import load_articles
from app.knowledge.cases import case_library
from app.knowledge.search import SearchHit
from app.messaging import publish_once
from app.workflows.contracts import Proposal, ProposalRef, ProposalSubject, ProposeRequest


def propose_solution(ctx: WorkflowActivityContext, request: ProposeRequest) -> Proposal | ProposalRef:
    services = deps.current()
    subject = request.about()
    ticket_id, revision = subject.ticket_id, request.revision
    store = services.records

    proposal = request.proposal or _offline_proposal(request, subject, store)
    if request.proposal is not None and not proposal.past_cases:
        proposal = proposal.model_copy(update={"past_cases": _past_cases(subject, store, proposal.cited_articles)})
    record = {
        "ticket_id": ticket_id,
        "revision": revision,
        # Without nulls or an empty case list: the stored proposal says only what it has.
        "proposal": proposal.model_dump(mode="json", exclude_none=True, exclude={"past_cases"} if not proposal.past_cases else None),
        "revision_notes": request.notes,
        "kb_queries": request.queries,
        "created_at": request.proposed_at,
    }
    created, stored = store.insert_if_absent(analysis_key(ticket_id, revision), record)
    proposal = Proposal.model_validate(stored["proposal"])
    settings = services.settings
    published = publish_once(
        services.dapr, store, settings.pubsub_name, settings.topic_solution_ready,
        f"{ticket_id}:solution-ready:{revision}",
        {"ticket_id": ticket_id, "priority": subject.priority, "category": subject.category,
         "revision": revision, "proposal": stored["proposal"], "proposed_at": stored["created_at"]},
        first_attempt=created,
    )
    ticket_logger(__name__, ticket_id).info("solution proposed", extra={
        "revision": revision, "published": published, "cited_articles": proposal.cited_articles})
    if request.by_reference:
        return ProposalRef(revision=revision, cited_articles=proposal.cited_articles, confidence=proposal.confidence,
                           generated_by=proposal.generated_by, llm_fallback_reason=proposal.llm_fallback_reason)
    return proposal


def _offline_proposal(request: ProposeRequest, subject: ProposalSubject, store) -> Proposal:
    articles = load_articles()
    result_lists = [[SearchHit.of(articles[h.slug], h.score) for h in hits if h.slug in articles]
                    for hits in request.search_results]
    fused, past_cases = rank_with_past_cases(result_lists, _case_finder(subject, store))
    composed = compose_offline_proposal(subject.description, fused, notes=request.notes,
                                        past_cases=past_cases, category=subject.category)
    if request.llm_fallback_reason:
        composed["llm_fallback_reason"] = request.llm_fallback_reason
    return Proposal.model_validate(composed)


def _past_cases(subject: ProposalSubject, store, cited_articles: list[str]) -> list[dict]:
    return [hit.citation() for hit in _case_finder(subject, store)(cited_articles)]


def _case_finder(subject: ProposalSubject, store):
    """Past resolutions of other tickets about the same problem (never the ticket's own)."""
    library = case_library(store)

    def find(articles: list[str]):
        try:
            return library.search(subject.description, articles=articles, exclude={subject.ticket_id})
        except Exception as error:  # noqa: BLE001 - past cases enrich a proposal, never block it
            ticket_logger(__name__, subject.ticket_id).warning(
                "past cases not searched", extra={"error": f"{type(error).__name__}: {error}"[:300]})
            return []

    return find
