"""Offline evaluation of triage and knowledge-base retrieval on labelled tickets.

    python -m app.eval FILE.jsonl

Each line is a ticket like shared/eval/dev-tickets.jsonl: description, expected_articles,
expected_category, expected_priority. Runs the same offline path as the service's expert step
(classify, build queries, search, fuse, compose) in this process, without a Dapr sidecar. Misses
go to stderr; the last line on stdout is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from app.expert.compose import compose_offline_proposal, fuse_results
from app.expert.queries import build_kb_queries
from app.knowledge.search import get_knowledge_search
from app.triage.classify import classify_ticket

RECALL_DEPTH = 3
HITS_PER_QUERY = 5


class TicketFileError(Exception):
    """The ticket file cannot be read or a line is not a valid ticket."""


@dataclass
class Outcome:
    ticket_id: str
    article_hit: bool | None  # None when the ticket has no expected articles
    category_hit: bool | None
    priority_hit: bool | None
    detail: str


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


def evaluate_ticket(ticket: dict) -> Outcome:
    description = ticket["description"]
    classification = classify_ticket(description)
    search = get_knowledge_search()
    queries = build_kb_queries(description, classification.category, None)
    fused = fuse_results([search.search(query, k=HITS_PER_QUERY) for query in queries],
                         k=HITS_PER_QUERY)
    cited = compose_offline_proposal(description, fused)["cited_articles"][:RECALL_DEPTH]

    expected = ticket.get("expected_articles") or []
    expected_category = ticket.get("expected_category")
    expected_priority = ticket.get("expected_priority")
    return Outcome(
        ticket_id=str(ticket["id"]),
        article_hit=any(slug in cited for slug in expected) if expected else None,
        category_hit=classification.category == expected_category if expected_category else None,
        priority_hit=classification.priority == expected_priority if expected_priority else None,
        detail=(f"cited {cited} expected {expected}; category {classification.category} "
                f"expected {expected_category}; priority {classification.priority} "
                f"expected {expected_priority}"),
    )


def summarise(outcomes: list[Outcome]) -> dict:
    def rate(hits: list[bool | None]) -> float | None:
        judged = [hit for hit in hits if hit is not None]
        return round(sum(judged) / len(judged), 4) if judged else None

    return {
        "tickets": len(outcomes),
        "article_recall_at_3": rate([o.article_hit for o in outcomes]),
        "category_accuracy": rate([o.category_hit for o in outcomes]),
        "priority_accuracy": rate([o.priority_hit for o in outcomes]),
        "mode": "offline",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.eval", description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path, help="tickets, one JSON object per line")
    args = parser.parse_args(argv)
    try:
        tickets = load_tickets(args.file)
    except TicketFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    outcomes = [evaluate_ticket(ticket) for ticket in tickets]
    for outcome in outcomes:
        if False in (outcome.article_hit, outcome.category_hit, outcome.priority_hit):
            print(f"miss {outcome.ticket_id}: {outcome.detail}", file=sys.stderr)
    print(json.dumps(summarise(outcomes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
