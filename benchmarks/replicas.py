"""The replica curve (`make bench REPLICAS=1,2,3`): throughput and CPU per ticket for each
replica count, on the supervised PostgreSQL topology of `make run REPLICAS=N`
(scripts/cluster.py through tests/support/harness.py `Cluster`).

    python -m benchmarks.replicas --replicas 1,2,3 [--n 60] [--c 16]

For each count, on freshly started processes: N tickets filed over REST through the API port
(HAProxy with 2+ replicas, the app itself with one) at concurrency C, each approved as soon as
it waits, until completed. Measured: tickets/s, CPU seconds of every process of the service
(apps, daprds and their children, PostgreSQL with its backends, placement, scheduler, redis,
HAProxy, Mailpit) per ticket, and how busy the whole machine was. Prints one JSON object per
count and a summary with the projection tickets/s per core = 1000 / CPU ms per ticket.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from benchmarks.support import cpu_seconds, emit, machine, process_tree, run_concurrently, ticket_body  # noqa: E402
from tests.support.harness import TEST_TOKENS, Cluster  # noqa: E402

FINAL = {"completed", "not_entitled", "escalated", "cancelled", "failed"}
ENGINEER = {"Authorization": f"Bearer {TEST_TOKENS['engineer']}"}


def process_cpu(cluster: Cluster) -> dict[str, float]:
    """CPU seconds so far of each program (with its children), by kind (app, daprd, ...)."""
    usage: dict[str, float] = {}
    for name, state in cluster.status().items():
        if not state.get("pid"):
            continue
        kind = name.split("-")[0]
        usage[kind] = usage.get(kind, 0.0) + sum(cpu_seconds(p) or 0.0 for p in process_tree(state["pid"]))
    return usage


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of every CPU since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_one(cluster: Cluster, prefix: str, n: int, concurrency: int, poll_s: float, timeout: float) -> dict:
    api = httpx.Client(base_url=cluster.url, headers=ENGINEER, timeout=60,
                       limits=httpx.Limits(max_connections=concurrency + 4, keepalive_expiry=2.0))

    def stage(ticket_id):
        try:
            response = api.get(f"/support/status/{ticket_id}")
        except httpx.TransportError:
            return None
        return response.json().get("stage") if response.status_code == 200 else None

    retried = Counter()

    def send(method: str, path: str, **kwargs) -> httpx.Response:
        """A client behind a load balancer retries 502/503/504 (no replica ready at that
        moment) after Retry-After or a second; each retry is counted and reported."""
        for _ in range(60):
            try:
                response = api.request(method, path, **kwargs)
            except httpx.TransportError as error:
                retried[type(error).__name__] += 1
                time.sleep(1)
                continue
            if response.status_code not in (502, 503, 504):
                return response
            retried[str(response.status_code)] += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))
        return response

    def one(i):
        ticket_id = f"{prefix}-{i}"
        began = time.perf_counter()
        response = send("POST", "/support/ticket", json=ticket_body(ticket_id, i))
        if response.status_code not in (200, 202):
            raise RuntimeError(f"file {ticket_id}: {response.status_code} {response.text[:200]}")
        deadline, approved = time.monotonic() + timeout, False
        while time.monotonic() < deadline:
            current = stage(ticket_id)
            if current in FINAL:
                if current != "completed":
                    raise RuntimeError(f"{ticket_id} ended {current}")
                return time.perf_counter() - began
            if current == "awaiting_approval" and not approved:
                response = send("POST", f"/support/approve/{ticket_id}", json={"approved": True},
                                headers={"Idempotency-Key": f"bench-{ticket_id}"})
                if response.status_code != 202:
                    raise RuntimeError(f"approve {ticket_id}: {response.status_code} {response.text[:200]}")
                approved = True
            time.sleep(poll_s)
        raise TimeoutError(f"{ticket_id} not completed in {timeout}s")

    started = time.perf_counter()
    results, errors = run_concurrently(n, concurrency, one)
    api.close()
    return {"elapsed": time.perf_counter() - started, "completed": len(results), "errors": errors,
            "latencies": sorted(results), "retried": dict(retried)}


def measure(replicas: int, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-replicas-{replicas}-"))
    workdir.chmod(0o711)  # as root, PostgreSQL runs as user postgres and must reach its data
    # Every count on PostgreSQL, so the curve compares replicas, not stores.
    cluster = Cluster(workdir, args.base_port, replicas=replicas, profile="postgresql",
                      app_env={"LOG_LEVEL": "WARNING"})
    try:
        began = time.monotonic()
        cluster.start()
        startup = time.monotonic() - began
        run_one(cluster, f"WARM{replicas}", args.warmup, min(args.warmup, args.c), args.poll, args.timeout)
        cpu_before, busy_before = process_cpu(cluster), machine_busy()
        run = run_one(cluster, f"R{replicas}", args.n, args.c, args.poll, args.timeout)
        cpu_after, busy_after = process_cpu(cluster), machine_busy()
        cpu = {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 2) for k in cpu_after}
        total_cpu = sum(cpu.values())
        done = max(1, run["completed"])
        busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
        latencies = run["latencies"]
        return {"replicas": replicas, "n": args.n, "concurrency": args.c, "completed": run["completed"],
                "errors": len(run["errors"]), "error_samples": run["errors"][:3], "retried": run["retried"],
                "startup_s": round(startup, 1), "seconds": round(run["elapsed"], 1),
                "tickets_per_s": round(run["completed"] / run["elapsed"], 2),
                "p50_s": round(latencies[len(latencies) // 2], 2) if latencies else None,
                "p95_s": round(latencies[int(len(latencies) * 0.95) - 1], 2) if latencies else None,
                "cpu_s_by_kind": cpu, "cpu_ms_per_ticket": round(total_cpu * 1000 / done, 1),
                "machine_busy": round(busy, 3), "service_cores_used": round(total_cpu / run["elapsed"], 2),
                "tickets_per_s_per_core": round(1000 / (total_cpu * 1000 / done), 2) if total_cpu else None}
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", default="1,2,3", help="comma-separated replica counts")
    parser.add_argument("--n", type=int, default=60, help="tickets per count")
    parser.add_argument("--c", type=int, default=16, help="concurrent clients")
    parser.add_argument("--warmup", type=int, default=4)
    # Every status poll is a request the service serves: at 0.2 s the polling was most of the
    # apps' CPU; 0.5 s keeps it a small share.
    parser.add_argument("--poll", type=float, default=0.5, help="status poll interval, s")
    parser.add_argument("--timeout", type=float, default=300, help="per-ticket timeout, s")
    parser.add_argument("--base-port", type=int, default=18000)
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.replicas.split(",") if c.strip()]
    rows, ok = [], True
    for count in counts:
        row = measure(count, args)
        emit(row)
        rows.append(row)
        ok &= row["errors"] == 0
    emit({"part": "summary", "machine": machine(), "loadavg": os.getloadavg(),
          "curve": [{k: r[k] for k in ("replicas", "tickets_per_s", "cpu_ms_per_ticket", "machine_busy",
                                      "service_cores_used", "tickets_per_s_per_core")} for r in rows],
          "projection": "tickets/s of a cluster ~= cores x tickets_per_s_per_core (1000 / CPU ms per ticket), "
                        "while PostgreSQL, placement and the scheduler keep up", "ok": ok})
    print(f"{'replicas':>8} {'tickets/s':>10} {'CPU ms/ticket':>14} {'machine busy':>13} {'per core':>9}")
    for r in rows:
        print(f"{r['replicas']:>8} {r['tickets_per_s']:>10} {r['cpu_ms_per_ticket']:>14} "
              f"{r['machine_busy']:>13} {r['tickets_per_s_per_core']:>9}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
