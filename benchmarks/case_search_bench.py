"""The past-case search at scale: N resolved cases added one by one to the incremental index
(app/knowledge/cases.py), as a service resolves them, then the expert step's search for the
development set's tickets. Prints one JSON object: the cost of adding a case, and the search's
p50/p99, at each size.

    python -m benchmarks.case_search_bench [--sizes 1000,10000] [--queries 200]

Before the index was incremental, the first proposal after any new case re-read every case and
analysed all of their texts again: 0.16 s at 1,000 cases and 1.6 s (plus 0.23 s of indexing) at
10,000, on this machine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.knowledge.case_store import ResolvedCase
from app.knowledge.cases import CaseIndex
from app.knowledge.articles import load_articles
from app.knowledge.search import get_knowledge_search
from benchmarks.support import percentile

DEV_TICKETS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev-tickets.jsonl"


def tickets() -> list[dict]:
    return [json.loads(line) for line in DEV_TICKETS.read_text().splitlines() if line.strip()]


def synthetic_cases(n: int, rng: random.Random) -> list[ResolvedCase]:
    """Cases shaped like approved proposals: an article's own words, cited with its slug."""
    articles = list(load_articles().values())
    cases = []
    for i in range(n):
        article = rng.choice(articles)
        words = article.body.split()
        start = rng.randrange(max(1, len(words) - 120))
        cases.append(ResolvedCase(ticket_id=f"CASE-{i:06d}", text=" ".join(words[start:start + 120]),
                                  category=article.category, cited_articles=[article.slug], approver="bench",
                                  resolved_at="2026-12-05T00:00:00+00:00"))
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    rng = random.Random(7)
    search = get_knowledge_search()
    queries = [(t["description"], [h.slug for h in search.search(t["description"], k=5)]) for t in tickets()]
    result = {"part": "case_search", "sizes": {}}
    index, added = CaseIndex(), 0
    for size in sorted(int(s) for s in args.sizes.split(",")):
        cases = synthetic_cases(size - added, rng)
        began = time.perf_counter()
        for case in cases:
            index.add(case)
        add_ms = (time.perf_counter() - began) * 1000 / max(1, len(cases))
        added = size
        latencies, found = [], 0
        for i in range(args.queries):
            description, articles = queries[i % len(queries)]
            began = time.perf_counter()
            found += bool(index.search(description, articles=articles))
            latencies.append((time.perf_counter() - began) * 1000)
        result["sizes"][size] = {"add_ms_per_case": round(add_ms, 3), "search_p50_ms": round(percentile(latencies, 0.5), 3),
                                 "search_p99_ms": round(percentile(latencies, 0.99), 3),
                                 "queries_with_a_case": round(found / args.queries, 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
