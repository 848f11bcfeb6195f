"""Evaluation of triage, scope and knowledge-base retrieval on labelled tickets.

    python -m app.eval FILE.jsonl [--offline] [--calibrate-scope] [--cases-from FILE.jsonl]

Each line is a ticket like shared/eval/dev-tickets.jsonl: description, expected_articles,
expected_category, expected_priority (`other` for a ticket out of scope). Runs the service's own
triage (classify, scope), query planning, search, fusion and proposal composition in this
process, without a Dapr sidecar. With an LLM configured (OPENAI_API_KEY / OPENAI_BASE_URL) the
triage agent's prompt and tools run through the openai chat client instead of the offline
classifier (`mode: "llm"`, with the model, per-ticket latency and tokens); retrieval stays the
offline expert's. Misses go to stderr; the last line on stdout is one JSON object with the figures.

Recall is reported without and with past cases (`article_recall_at_3_with_past_cases`). The
cases are seeded from labelled tickets as an engineer would have approved them: the proposal
built from the ticket's first expected article (its title and numbered steps), citing the
expected articles, with the expected category. They come from `--cases-from` files, or else
from the evaluated tickets themselves; either way a ticket never sees the case seeded from
itself (leave-one-out by id), so a case helps only through another ticket's resolution.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from app.expert.compose import compose_offline_proposal, fuse_results, rank_with_past_cases
from app.expert.problems import split_problems
from app.expert.queries import build_kb_queries
from app.knowledge.articles import OUT_OF_SCOPE_CATEGORY, load_articles
from app.knowledge.case_store import ResolvedCase
from app.knowledge.cases import CaseIndex
from app.knowledge.search import get_knowledge_search
from app.triage.classify import classify_ticket
from app.triage.scope import SCOPE_THRESHOLD, assess_scope

RECALL_DEPTH = 3
HITS_PER_QUERY = 5
# Confidence bands for the calibration table: [low, high).
CONFIDENCE_BANDS = ((0.0, 0.4), (0.4, 0.6), (0.6, 0.75), (0.75, 1.01))


class TicketFileError(Exception):
    """The ticket file cannot be read or a line is not a valid ticket."""


@dataclass
class Outcome:
    ticket_id: str
    article_hit: bool | None  # None when the ticket has no expected articles
    category_hit: bool | None
    priority_hit: bool | None
    detail: str
    out_of_scope_expected: bool = False
    routed_to_person: bool = False
    both_cited: bool | None = None  # None unless the ticket has two or more expected articles
    top_hit: bool | None = None  # first cited article expected; None without expected articles
    confidence: float = 0.0
    llm: dict | None = None  # latency and tokens of the LLM triage run
    llm_error: str | None = None
    signals: list[str] = field(default_factory=list)
    article_hit_with_cases: bool | None = None  # None without expected articles or without cases
    top_hit_with_cases: bool | None = None
    past_case_cited: bool = False
    past_case_on_problem: bool | None = None  # the first cited case cites an expected article


def seed_cases(tickets: list[dict]) -> CaseIndex:
    """The resolved cases an engineer would have approved for the labelled tickets (module
    docstring): out-of-scope and unlabelled tickets give none."""
    articles = load_articles()
    cases = []
    for ticket in tickets:
        expected = [slug for slug in ticket.get("expected_articles") or [] if slug in articles]
        if not expected or ticket.get("expected_category") in (None, OUT_OF_SCOPE_CATEGORY):
            continue
        top = articles[expected[0]]
        steps = "\n".join(f"{i}. {step}" for i, step in enumerate(top.steps, start=1))
        cases.append(ResolvedCase(ticket_id=str(ticket["id"]), text=f"{top.title}\n\nSteps:\n{steps}",
                                  category=ticket["expected_category"], cited_articles=expected,
                                  approver="eval-seed", resolved_at="2026-01-01T00:00:00+00:00"))
    return CaseIndex(cases)


def load_tickets(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise TicketFileError(f"cannot read {path}: {error.strerror or error}") from error
    tickets = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            ticket = json.loads(line)
        except json.JSONDecodeError as error:
            raise TicketFileError(f"{path}:{number}: not valid JSON ({error.msg})") from error
        if not isinstance(ticket, dict) or not isinstance(ticket.get("description"), str):
            raise TicketFileError(f"{path}:{number}: expected an object with a 'description' string")
        expected = ticket.get("expected_articles", [])
        if not isinstance(expected, list) or not all(isinstance(s, str) for s in expected):
            raise TicketFileError(f"{path}:{number}: 'expected_articles' must be a list of slugs")
        ticket.setdefault("id", f"line {number}")
        tickets.append(ticket)
    if not tickets:
        raise TicketFileError(f"{path}: no tickets")
    return tickets


def evaluate_ticket(ticket: dict, runner=None, cases: CaseIndex | None = None) -> Outcome:
    """One ticket through triage, scope and the offline expert; `runner` (a
    TriageAgentRunner) replaces the offline classifier's category and priority by the agent's.
    With `cases`, the proposal is composed a second time with the past cases it matches."""
    description = ticket["description"]
    classification = classify_ticket(description)
    llm, llm_error = None, None
    if runner is not None:
        run = runner.triage(ticket)
        llm = {"latency_s": run.latency_s, "prompt_tokens": run.prompt_tokens,
               "completion_tokens": run.completion_tokens, "calls": run.calls,
               "tool_calls": run.tool_calls}
        llm_error = run.error
        category = run.assessment.category if run.assessment else None
        priority = run.assessment.priority if run.assessment else None
        # The agent's category with the offline retrieval score: scope reads both.
        scope = assess_scope(description, SimpleNamespace(category=category,
                                                          top_score=classification.top_score))
        if category != OUT_OF_SCOPE_CATEGORY and not scope.in_scope:
            category = OUT_OF_SCOPE_CATEGORY
    else:
        category, priority = classification.category, classification.priority
        scope = assess_scope(description, classification)

    search = get_knowledge_search()
    queries = build_kb_queries(description, category or classification.category, None)
    result_lists = [search.search(query, k=HITS_PER_QUERY) for query in queries]
    fused = fuse_results(result_lists, k=HITS_PER_QUERY)
    problems = split_problems(description)
    proposal = compose_offline_proposal(description, fused, scope=scope, problems=problems, category=category)
    cited = proposal["cited_articles"][:RECALL_DEPTH]

    expected = ticket.get("expected_articles") or []
    hit_with_cases, top_with_cases, past_cited, on_problem = None, None, False, None
    if cases is not None:
        fused_with, past = rank_with_past_cases(result_lists, lambda slugs: cases.search(
            description, articles=slugs, exclude={str(ticket["id"])}), k=HITS_PER_QUERY)
        with_cases = compose_offline_proposal(description, fused_with, scope=scope, problems=problems,
                                              past_cases=past, category=category)
        past_cited = bool(with_cases["past_cases"])
        cited_with = with_cases["cited_articles"][:RECALL_DEPTH]
        hit_with_cases = any(slug in cited_with for slug in expected) if expected else None
        top_with_cases = bool(cited_with) and cited_with[0] in expected if expected else None
        if past and expected:
            on_problem = any(slug in expected for slug in past[0]["cited_articles"])
    expected_category = ticket.get("expected_category")
    expected_priority = ticket.get("expected_priority")
    return Outcome(
        ticket_id=str(ticket["id"]),
        article_hit=any(slug in cited for slug in expected) if expected else None,
        category_hit=category == expected_category if expected_category else None,
        priority_hit=priority == expected_priority if expected_priority else None,
        detail=(f"cited {cited} expected {expected}; category {category} "
                f"expected {expected_category}; priority {priority} expected {expected_priority}; "
                f"scope {scope.score:.2f}{'' if scope.in_scope else ' (to a person)'}"
                + (f"; llm error: {llm_error}" if llm_error else "")),
        out_of_scope_expected=expected_category == OUT_OF_SCOPE_CATEGORY,
        routed_to_person=not scope.in_scope,
        both_cited=all(slug in cited for slug in expected) if len(expected) > 1 else None,
        top_hit=bool(cited) and cited[0] in expected if expected else None,
        confidence=proposal["confidence"],
        llm=llm,
        llm_error=llm_error,
        signals=classification.signals,
        article_hit_with_cases=hit_with_cases,
        top_hit_with_cases=top_with_cases,
        past_case_cited=past_cited,
        past_case_on_problem=on_problem,
    )


def summarise(outcomes: list[Outcome], mode: str = "offline", model: str | None = None) -> dict:
    def rate(hits: list[bool | None]) -> float | None:
        judged = [hit for hit in hits if hit is not None]
        return round(sum(judged) / len(judged), 4) if judged else None

    figures = {
        "tickets": len(outcomes),
        "article_recall_at_3": rate([o.article_hit for o in outcomes]),
        "article_recall_at_3_with_past_cases": rate([o.article_hit_with_cases for o in outcomes]),
        "top_article_accuracy": rate([o.top_hit for o in outcomes]),
        "top_article_accuracy_with_past_cases": rate([o.top_hit_with_cases for o in outcomes]),
        "past_case_cited": rate([o.past_case_cited for o in outcomes if not o.out_of_scope_expected]),
        "past_case_on_the_same_problem": rate([o.past_case_on_problem for o in outcomes]),
        "category_accuracy": rate([o.category_hit for o in outcomes]),
        "priority_accuracy": rate([o.priority_hit for o in outcomes]),
        # Apart: an out-of-scope ticket goes to a person whatever its priority.
        "priority_accuracy_in_scope": rate([o.priority_hit for o in outcomes
                                            if not o.out_of_scope_expected]),
        "out_of_scope_routed_to_person": rate([o.routed_to_person for o in outcomes
                                               if o.out_of_scope_expected]),
        "in_scope_routed_away": rate([o.routed_to_person for o in outcomes
                                      if not o.out_of_scope_expected]),
        "two_problems_both_cited_at_3": rate([o.both_cited for o in outcomes]),
        "calibration": calibration(outcomes),
        "mode": mode,
    }
    if mode == "llm":
        runs = [o.llm for o in outcomes if o.llm]
        figures.update({
            "model": model,
            "llm_errors": sum(1 for o in outcomes if o.llm_error),
            "latency_s": {"mean": round(sum(r["latency_s"] for r in runs) / len(runs), 3),
                          "max": max(r["latency_s"] for r in runs)} if runs else None,
            "prompt_tokens": sum(r["prompt_tokens"] for r in runs),
            "completion_tokens": sum(r["completion_tokens"] for r in runs),
            "per_ticket": [{"id": o.ticket_id, **{k: o.llm[k] for k in (
                "latency_s", "prompt_tokens", "completion_tokens")}} for o in outcomes if o.llm],
        })
    return figures


def calibration(outcomes: list[Outcome]) -> list[dict]:
    """Per confidence band: how many proposals, their mean confidence, and how often the first
    cited article was an expected one (tickets with expected articles only)."""
    bands = []
    for low, high in CONFIDENCE_BANDS:
        inside = [o for o in outcomes if o.top_hit is not None and low <= o.confidence < high]
        bands.append({
            "band": f"{low:.2f}-{min(high, 1.0):.2f}", "tickets": len(inside),
            "mean_confidence": round(sum(o.confidence for o in inside) / len(inside), 3) if inside else None,
            "top_article_accuracy": round(sum(bool(o.top_hit) for o in inside) / len(inside), 3) if inside else None,
        })
    return bands


def calibrate_scope(tickets: list[dict]) -> dict:
    """The scope scores of in-scope and out-of-scope tickets, and the threshold that routes the
    most out-of-scope tickets to a person while routing none of the calibration set's in-scope
    tickets away (midpoint of the gap it falls in): unseen tickets must stay within
    the 5 % target, so the calibration set keeps that margin."""
    scored = sorted((assess_scope(t["description"]).score,
                     t.get("expected_category") == OUT_OF_SCOPE_CATEGORY, str(t["id"])) for t in tickets)
    inside = [score for score, out, _ in scored if not out]
    outside = [score for score, out, _ in scored if out]
    best = None
    for i in range(len(scored) + 1):
        below = scored[:i]
        away = sum(1 for _, out, _ in below if not out) / max(1, len(inside))
        caught = sum(1 for _, out, _ in below if out) / max(1, len(outside))
        if away == 0 and (best is None or caught > best[1]):
            low = scored[i - 1][0] if i else 0.0
            high = scored[i][0] if i < len(scored) else 1.0
            best = (round((low + high) / 2, 3), caught, away)
    return {"threshold": best[0], "out_of_scope_caught": round(best[1], 4),
            "in_scope_routed_away": round(best[2], 4), "current_threshold": SCOPE_THRESHOLD,
            "distribution": {"in_scope": _quantiles(inside), "out_of_scope": _quantiles(outside)},
            "lowest_in_scope": [(s, i) for s, _, i in [x for x in scored if not x[1]][:5]],
            "out_of_scope": [(s, i) for s, out, i in scored if out]}


def _quantiles(scores: list[float]) -> dict | None:
    """Minimum, 5th, 25th, 50th, 75th percentile and maximum of sorted scores (nearest rank)."""
    if not scores:
        return None
    at = {"min": 0.0, "p5": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "max": 1.0}
    return {name: scores[round(q * (len(scores) - 1))] for name, q in at.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.eval", description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, nargs="+", help="tickets, one JSON object per line")
    parser.add_argument("--offline", action="store_true", help="ignore a configured LLM")
    parser.add_argument("--cases-from", type=Path, action="append", default=[],
                        help="seed the past cases from these tickets (default: the evaluated ones)")
    parser.add_argument("--calibrate-scope", action="store_true",
                        help="print the scope-score sweep over all files instead of evaluating")
    args = parser.parse_args(argv)
    try:
        tickets = [ticket for path in args.files for ticket in load_tickets(path)]
        seeds = [ticket for path in args.cases_from for ticket in load_tickets(path)] or tickets
    except TicketFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.calibrate_scope:
        print(json.dumps(calibrate_scope(tickets)))
        return 0

    runner, model = (None, None) if args.offline else _llm_runner()
    cases = seed_cases(seeds)
    outcomes = [evaluate_ticket(ticket, runner, cases) for ticket in tickets]
    for outcome in outcomes:
        wrong_route = outcome.routed_to_person != outcome.out_of_scope_expected
        if outcome.article_hit_with_cases is not None and outcome.article_hit_with_cases != outcome.article_hit:
            print(f"past cases {'fixed' if outcome.article_hit_with_cases else 'broke'} {outcome.ticket_id}",
                  file=sys.stderr)
        if wrong_route or outcome.both_cited is False or outcome.llm_error or False in (
                outcome.article_hit, outcome.category_hit, outcome.priority_hit):
            print(f"miss {outcome.ticket_id}: {outcome.detail}", file=sys.stderr)
        if outcome.llm:
            print(f"llm {outcome.ticket_id}: {json.dumps(outcome.llm)}", file=sys.stderr)
    figures = summarise(outcomes, "llm" if runner else "offline", model)
    figures["past_cases_seeded"] = len(cases)
    print(json.dumps(figures))
    return 0


def _llm_runner():
    """The triage agent runner when an OpenAI-compatible LLM is configured, else (None, None)."""
    from app.core.config import get_settings

    settings = get_settings()
    if settings.effective_llm_provider != "openai":
        return None, None
    import openai

    from app.triage.llm_eval import TriageAgentRunner
    from setup_sample_data import CUSTOMERS, SYSTEMS

    client = openai.OpenAI(api_key=settings.openai_api_key or "unused",
                           base_url=settings.openai_base_url or None,
                           timeout=settings.llm_timeout, max_retries=0)
    return TriageAgentRunner(client, settings.llm_model, CUSTOMERS, SYSTEMS), settings.llm_model


if __name__ == "__main__":
    sys.exit(main())
