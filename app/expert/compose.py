"""The offline expert: fuses knowledge-base rankings and composes a proposal from the articles.

Used when no LLM is configured (and by the evaluation command): the proposal is assembled from
the cited articles' causes and numbered resolution steps, never invented.
"""

from __future__ import annotations

import math
from typing import Callable, Literal

from pydantic import BaseModel, Field

from app.knowledge.articles import Article, load_articles
from app.expert.problems import Problem, split_problems
from app.knowledge.search import SearchHit, analyze
from app.triage.scope import ScopeAssessment, assess_scope

# Reciprocal-rank fusion constant from Cormack et al. (2009); 60 damps the weight of rank 1.
RRF_K = 60
# A problem whose runner-up scores more than this share below its best article is unsure of it.
UNSURE_LEAD = 0.5
MAX_CITED = 3
# Offline proposals never claim more than this: an engineer still reviews every one.
MAX_OFFLINE_CONFIDENCE = 0.9
# A best-article BM25 score of this much counts as the strongest match (as in triage scope).
FULL_MATCH_SCORE = 30.0
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
    # False when the ticket is not for the knowledge base: no citations, a person answers.
    in_scope: bool = True
    # What the confidence was computed from, for the engineer.
    confidence_signals: list[str] = []
    # Earlier engineer-approved solutions to the same problem, with their provenance
    # (app/knowledge/cases.py CaseHit.citation()).
    past_cases: list[dict] = []


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


def rank_with_past_cases(result_lists: list[list[SearchHit]], find_cases: Callable[[list[str]], list],
                         k: int = 5) -> tuple[list[SearchHit], list[dict]]:
    """The fused article ranking with the past cases' articles folded in as one more ranking,
    and the cases' citations. `find_cases(slugs)` gets the articles the ticket's own retrieval
    found (a case must relate to one of them, or share the category) and returns CaseHits."""
    fused = fuse_results(result_lists, k=k)
    case_hits = find_cases([hit.slug for hit in fused])
    if not case_hits:
        return fused, []
    articles = load_articles()
    ranking: dict[str, SearchHit] = {}  # in order of the best case citing each article
    for hit in case_hits:
        for slug in hit.case.cited_articles:
            if slug in articles and slug not in ranking:
                ranking[slug] = SearchHit.of(articles[slug], 0.0,
                                             snippet=f"cited by the past resolution of {hit.case.ticket_id}")
    ranking = list(ranking.values())
    return fuse_results([*result_lists, ranking], k=k), [hit.citation() for hit in case_hits]


def lead_with_category(hits: list[SearchHit], category: str | None) -> list[SearchHit]:
    """The hits with the best one of the triaged category first: the rubric's category is that of
    the topic that best matches the ticket, so the proposal leads with a topic of it. Unchanged
    when the best hit is of that category already, or none is. (Measured on posthoc34-36 with
    the category model trained without them: top article +1 ticket on each set, recall the same;
    docs/benchmarks.md, "Session 15".)"""
    if not hits or not category or hits[0].category == category:
        return hits
    lead = next((hit for hit in hits if hit.category == category), None)
    return hits if lead is None else [lead, *(hit for hit in hits if hit is not lead)]


def compose_offline_proposal(description: str, hits: list[SearchHit], notes: str | None = None,
                             *, scope: ScopeAssessment | None = None,
                             problems: list[Problem] | None = None,
                             past_cases: list[dict] | None = None, category: str | None = None) -> dict:
    """A proposal built from the best hits' articles (at most three cited). A ticket with
    several problems cites each problem's article first, most impact first; a ticket out of
    scope cites none and proposes nothing: a person answers it. `scope` and `problems` are
    computed from the description when not given; `category`, the triaged one, leads the hits
    (`lead_with_category`)."""
    articles = load_articles()
    notes = " ".join(notes.split()) if notes else None
    scope = scope or assess_scope(description)
    if not scope.in_scope:
        return ExpertProposal(
            summary=f"Out of scope for the knowledge base: {scope.reason}. A person will answer.",
            likely_causes=[], steps=[], cited_articles=[], confidence=0.0, in_scope=False,
            confidence_signals=scope.signals).model_dump()
    problems = problems if problems is not None else split_problems(description)
    slugs = []
    if len(problems) > 1:
        slugs += [p.slug for p in problems]
        # Then the runner-up of a problem whose best article barely leads it, least sure first: a
        # third citation is worth more there than a second answer to a problem matched surely.
        slugs += [p.hits[1].slug for p in sorted(problems, key=_lead) if len(p.hits) > 1 and _lead(p) < UNSURE_LEAD]
    slugs += [hit.slug for hit in lead_with_category(hits, category)]
    cited = [articles[slug] for slug in dict.fromkeys(slugs) if slug in articles][:MAX_CITED]
    if not cited:
        proposal = ExpertProposal(summary=_summary(None, [], notes), likely_causes=[],
                                  steps=[NO_MATCH_STEP], cited_articles=[], confidence=0.0)
        return proposal.model_dump()

    answered = min(len(problems), len(cited)) if len(problems) > 1 else 1
    top, also_problems, others = cited[0], cited[1:answered], cited[answered:]
    causes = [*top.causes, *(f"{a.causes[0]} (see {a.slug})" for a in [*also_problems, *others])]
    steps = [*top.steps]
    for number, article in enumerate(also_problems, start=2):
        steps += [f"Problem {number}, '{article.title}' ({article.slug}): {step}"
                  for step in article.steps]
    steps += [f"If the problem persists, check '{a.title}' ({a.slug}): {a.steps[0]}" for a in others]
    confidence, confidence_signals = proposal_confidence(description, top, problems, scope)
    proposal = ExpertProposal(
        summary=_summary(top, others, notes, also_problems),
        likely_causes=causes,
        steps=steps,
        cited_articles=[a.slug for a in cited],
        confidence=confidence,
        confidence_signals=confidence_signals,
        past_cases=list(past_cases or []),
    )
    return proposal.model_dump()


def _summary(top: Article | None, others: list[Article], notes: str | None,
             also_problems: list[Article] = ()) -> str:
    parts = ["Composed offline from the knowledge base (no LLM)."]
    if top is None:
        parts.append("No article matches this ticket; it needs an engineer's diagnosis.")
    elif also_problems:
        parts.append(f"The ticket reports {1 + len(also_problems)} problems, most impact first: "
                     + "; ".join(f"'{a.title}' ({a.slug})" for a in [top, *also_problems]) + ".")
    else:
        parts.append(f"The ticket best matches '{top.title}' ({top.slug}).")
    if others:
        parts.append("Also consider: " + "; ".join(f"'{a.title}' ({a.slug})" for a in others) + ".")
    if notes:
        parts.append(f"Revised per engineer notes: {notes}")
    return " ".join(parts)


def proposal_confidence(description: str, top: Article, problems: list[Problem],
                        scope: ScopeAssessment) -> tuple[float, list[str]]:
    """How likely the proposal's first article solves the ticket, from the retrieval and triage
    signals, on 0..MAX_OFFLINE_CONFIDENCE: the weakest problem's match strength and lead over its
    runner-up, how much of the ticket the top article covers, and the scope score. The weights
    were checked for calibration on the dev sets (`python -m app.eval` prints accuracy per band)."""
    strength = min((_match_strength(p) for p in problems), default=0.0)
    lead = min((_lead(p) for p in problems), default=0.0)
    coverage = _coverage(description, top)
    raw = 0.3 * strength + 0.3 * lead + 0.2 * coverage + 0.2 * scope.score
    confidence = round(min(MAX_OFFLINE_CONFIDENCE, max(0.0, raw)), 2)
    return confidence, [f"match strength {strength:.2f}", f"lead over the next article {lead:.2f}",
                        f"ticket words the article covers {coverage:.2f}",
                        f"scope score {scope.score:.2f}"]


def _match_strength(problem: Problem) -> float:
    return min(1.0, math.log1p(problem.score) / math.log1p(FULL_MATCH_SCORE))


def _lead(problem: Problem) -> float:
    """0 when the runner-up scores as much as the best article, 1 when nothing else matches."""
    if len(problem.hits) < 2 or problem.hits[0].score <= 0:
        return 1.0
    return max(0.0, 1.0 - problem.hits[1].score / problem.hits[0].score)


def _coverage(description: str, top: Article) -> float:
    """Share of the description's terms found in the top article."""
    terms = set(analyze(description))
    if not terms:
        return 0.0
    article_terms = set(analyze(f"{top.title} {' '.join(top.keywords)} {top.body}"))
    return len(terms & article_terms) / len(terms)
