"""The ticket list's query at scale: N tickets in the read model (the real ReadModel class on
SQLite, or PostgreSQL with --url), then pages of the list with filters and a cursor, as
GET /support/tickets runs them. Prints one JSON object with p50/p99 per kind of page.

    python -m benchmarks.list_bench [--tickets 10000] [--pages 400] [--url postgresql://...]

This is the read model's share of a list call; the endpoint answers from the read model alone
(its whole cost, with HTTP, is `make bench`'s capacity list figures).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.readmodel.store import ReadModel
from app.workflows.contracts import ProgressRecord, TicketProgress, TimelineEvent
from benchmarks.support import percentile

STAGES = ["triage", "expert_analysis", "awaiting_approval", "notifying", "completed", "escalated", "not_entitled"]
PRIORITIES = ["low", "medium", "high", "critical"]
CUSTOMERS = [f"CUST{i:03d}" for i in range(1, 51)]
CATEGORIES = ["connectivity", "pubsub", "state", "workflow", "security", "deployment", "other"]


def fill(model: ReadModel, n: int, rng: random.Random) -> float:
    """n tickets as the workflow records them (three records each); seconds taken."""
    start = time.perf_counter()
    base = datetime(2026, 11, 1, tzinfo=timezone.utc)
    for i in range(n):
        ticket_id = f"LIST-{i:06d}"
        filed_at = (base + timedelta(seconds=37 * i)).isoformat()
        stage = rng.choice(STAGES)
        records = [
            TicketProgress(customer_id=rng.choice(CUSTOMERS), filed_at=filed_at, filed_by="bench",
                           description=f"ticket {i}: sidecar cannot reach the app on port {5000 + i % 50}",
                           stage="triage", revision=0, awaiting_decision=False, workflow_version="v2"),
            TicketProgress(priority=rng.choice(PRIORITIES), category=rng.choice(CATEGORIES), plan="enterprise",
                           entitled=True, stage="expert_analysis"),
            TicketProgress(stage=stage, awaiting_decision=stage == "awaiting_approval"),
        ]
        for seq, progress in enumerate(records, start=1):
            model.apply(ProgressRecord(ticket_id=ticket_id, seq=seq, progress=progress, events=[
                TimelineEvent(key=f"e{seq}", kind="stage", actor="workflow", at=filed_at)]))
    return time.perf_counter() - start


def timed_pages(model: ReadModel, rng: random.Random, pages: int, make_filters, depth: int = 3) -> list[float]:
    """Milliseconds per page: a first page, then up to `depth` pages following its cursor."""
    times = []
    while len(times) < pages:
        filters, text = make_filters(rng)
        cursor = None
        for _ in range(depth):
            start = time.perf_counter()
            _rows, cursor = model.list(filters, limit=50, cursor=cursor, text=text)
            times.append((time.perf_counter() - start) * 1000)
            if cursor is None:
                break
    return times


KINDS = {
    "no filter": lambda rng: ({}, None),
    "stage": lambda rng: ({"stage": rng.choice(STAGES)}, None),
    "customer + priority": lambda rng: ({"customer_id": rng.choice(CUSTOMERS), "priority": rng.choice(PRIORITIES)}, None),
    "awaiting decision": lambda rng: ({"awaiting_decision": True}, None),
    "words of the description": lambda rng: ({}, f"port {5000 + rng.randrange(50)}"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=400, help="pages timed per kind")
    parser.add_argument("--url", help="READ_MODEL_URL (default: a SQLite file in a temporary directory)")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        model = ReadModel(args.url or f"sqlite:///{tmp}/readmodel.db")
        model.clear()
        fill_seconds = fill(model, args.tickets, rng)
        result = {"tickets": model.count(), "backend": (args.url or "sqlite").split(":", 1)[0],
                  "fill_seconds": round(fill_seconds, 1), "pages": {}}
        for name, make_filters in KINDS.items():
            times = timed_pages(model, rng, args.pages, make_filters)
            result["pages"][name] = {"count": len(times), "p50_ms": round(percentile(times, 0.5), 2),
                                     "p99_ms": round(percentile(times, 0.99), 2), "max_ms": round(max(times), 2)}
        worst = max(p["p99_ms"] for p in result["pages"].values())
        result["target_p99<=50ms"] = worst <= 50
        model.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
