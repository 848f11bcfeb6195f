"""Knowledge-base retrieval benchmark: index build time, query latency and process memory.

    python benchmarks/retrieval_bench.py [--queries 1000] [--tickets FILE.jsonl]

Queries are the ticket descriptions (shared/eval/dev-tickets.jsonl by default) repeated until
the requested count. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere, no install needed

from app.knowledge.articles import load_articles  # noqa: E402
from app.knowledge.search import KnowledgeSearch  # noqa: E402

DEFAULT_TICKETS = REPO.parent / "shared" / "eval" / "dev-tickets.jsonl"


def rss_mb() -> float:
    """Current resident set size, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--tickets", type=Path, default=DEFAULT_TICKETS)
    args = parser.parse_args()
    descriptions = [json.loads(line)["description"]
                    for line in args.tickets.read_text().splitlines() if line.strip()]

    started = time.perf_counter()
    articles = load_articles()
    loaded = time.perf_counter()
    search = KnowledgeSearch(articles)
    built = time.perf_counter()

    latencies_ms = []
    for i in range(args.queries):
        query = descriptions[i % len(descriptions)]
        begin = time.perf_counter()
        search.search(query, k=5)
        latencies_ms.append((time.perf_counter() - begin) * 1000)
    latencies_ms.sort()

    print(json.dumps({
        "articles": len(articles),
        "load_articles_ms": round((loaded - started) * 1000, 2),
        "index_build_ms": round((built - loaded) * 1000, 2),
        "queries": args.queries,
        "query_ms_p50": round(percentile(latencies_ms, 0.50), 3),
        "query_ms_p99": round(percentile(latencies_ms, 0.99), 3),
        "query_ms_max": round(latencies_ms[-1], 3),
        "query_ms_mean": round(statistics.fmean(latencies_ms), 3),
        "rss_mb": rss_mb(),
    }))


if __name__ == "__main__":
    main()
