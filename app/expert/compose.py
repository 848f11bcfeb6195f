"""The offline expert: fuses knowledge-base rankings and composes a proposal from the articles.

Used when no LLM is configured (and by the evaluation command): the proposal is assembled from
the cited articles' causes and numbered resolution steps, never invented.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.knowledge.articles import Article, load_articles
from app.knowledge.search import SearchHit, analyze

# Reciprocal-rank fusion constant from Cormack et al. (2009); 60 damps the weight of rank 1.
RRF_K = 60
MAX_CITED = 3
# Offline proposals never claim more than this: an engineer still reviews every one.
MAX_OFFLINE_CONFIDENCE = 0.9
NO_MATCH_STEP = ("Collect the sidecar logs at debug level (`kubectl logs <pod> -c daprd` or the "
                 "`dapr run` output), the Dapr version (`dapr version`) and the component YAML, "
                 "and hand the ticket to an engineer: no knowledge-base article matches it.")


class ExpertProposal(BaseModel):
    summary: str
    likely_causes: list[str]
    steps: list[str]
    cited_articles: list[str]
    confidence: float = Field(ge=0.0, le=1.0)
    generated_by: Literal["offline", "llm"] = "offline"


def fuse_results(result_lists: list[list[SearchHit]], k: int = 5) -> list[SearchHit]:
    """Reciprocal-rank fusion of several rankings. Each returned hit carries its fused score;
    ties go to the article with the better single rank, then to the slug (deterministic)."""
    fused: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    first_seen: dict[str, SearchHit] = {}
    for hits in result_lists:
        for rank, hit in enumerate(hits, start=1):
            fused[hit.slug] = fused.get(hit.slug, 0.0) + 1.0 / (RRF_K + rank)
            best_rank[hit.slug] = min(rank, best_rank.get(hit.slug, rank))
            first_seen.setdefault(hit.slug, hit)
    # Rounded so that float summation order can never reorder equal fusions.
    order = sorted(fused, key=lambda slug: (-round(fused[slug], 9), best_rank[slug], slug))
    return [first_seen[slug].model_copy(update={"score": round(fused[slug], 6)})
            for slug in order[:k]]


def compose_offline_proposal(description: str, hits: list[SearchHit],
                             notes: str | None = None) -> dict:
    """A proposal built from the best hits' articles (top article first, at most three cited)."""
    articles = load_articles()
    cited = [articles[hit.slug] for hit in hits if hit.slug in articles][:MAX_CITED]
    notes = " ".join(notes.split()) if notes else None
    if not cited:
        proposal = ExpertProposal(summary=_summary(None, [], notes), likely_causes=[],
                                  steps=[NO_MATCH_STEP], cited_articles=[], confidence=0.0)
        return proposal.model_dump()

    top, others = cited[0], cited[1:]
    causes = [*top.causes, *(f"{a.causes[0]} (see {a.slug})" for a in others)]
    steps = [*top.steps, *(f"If the problem persists, check '{a.title}' ({a.slug}): {a.steps[0]}"
                           for a in others)]
    proposal = ExpertProposal(
        summary=_summary(top, others, notes),
        likely_causes=causes,
        steps=steps,
        cited_articles=[a.slug for a in cited],
        confidence=_confidence(description, top),
    )
    return proposal.model_dump()


def _summary(top: Article | None, others: list[Article], notes: str | None) -> str:
    parts = ["Composed offline from the knowledge base (no LLM)."]
    if top is None:
        parts.append("No article matches this ticket; it needs an engineer's diagnosis.")
    else:
        parts.append(f"The ticket best matches '{top.title}' ({top.slug}).")
    if others:
        parts.append("Also consider: " + "; ".join(f"'{a.title}' ({a.slug})" for a in others) + ".")
    if notes:
        parts.append(f"Revised per engineer notes: {notes}")
    return " ".join(parts)


def _confidence(description: str, top: Article) -> float:
    """Share of the description's terms found in the top article, mapped onto 0.2..0.9: a ticket
    whose words the article covers is more likely solved by it."""
    terms = set(analyze(description))
    if not terms:
        return 0.0
    article_terms = set(analyze(f"{top.title} {' '.join(top.keywords)} {top.body}"))
    coverage = len(terms & article_terms) / len(terms)
    return round(min(MAX_OFFLINE_CONFIDENCE, 0.2 + 0.7 * coverage), 2)
