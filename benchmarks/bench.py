"""Throughput and latency of the service against the bare workflow engine (`make bench`).

    python -m benchmarks.bench [--n 200] [--c 20] [--latency-load 0.8 | --rate R] [--duration 60]
                               [--waiting 1000,10000] [--restart | --no-restart]
                               [--store sqlite|postgresql]

On one freshly started set of processes (redis, placement, scheduler, daprd; SQLite stores, or a
PostgreSQL server with --store postgresql), in this order:

1. floor_shape  the bare engine: benchmarks/floor_app.py (a workflow issuing the ticket
             workflow's commands turn by turn, checked against the live ticket's history, whose
             activities do nothing) runs in place of the app on the same daprd; N instances at
             concurrency C, each approved (external event) as soon as its status says it waits.
             `floor` does the same with the first releases' smaller shape, for comparison.
2. service   the app takes the port over: N tickets filed over REST at concurrency C (offline
             mode), each approved over REST as soon as it reaches `awaiting_approval`, until
             `completed`.
3. latency   filing and deciding at a steady rate in total (half each, open loop) for DURATION
             s, against a pool of tickets already waiting: p50, p99, max, errors. The rate is
             --latency-load (0.8) of the capacity part 2 measured: 2 x 0.8 x tickets/s, since a
             ticket is one filing and one decision; or --rate requests/s.
3b. overload the same mix at --overload (1.5) times the capacity, for 30 s: filings accepted
             and shed (503 with Retry-After), the accepted requests' latency, and that every
             accepted filing reaches its decision.
4. capacity  for each level of --waiting, that many tickets waiting for a decision at once: every
             one answers its status, list pages, resident memory and bytes on disk per ticket;
             at the last level every process is stopped and started (--restart), then every
             ticket accepts its decision and completes.

Prints one JSON object per part and a summary with ratio = service tickets/s / floor_shape
workflows/s and the issue's targets; a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402
import httpx  # noqa: E402

from benchmarks.support import (Deadline, Progress, children, cpu_seconds, disk_bytes, emit,  # noqa: E402
                                history_size, latency_summary, machine, new_service, pid_of, pss_tree_mb, rss_mb,
                                run_concurrently, start_floor_worker, stop_all, stop_floor_worker,
                                ticket_body)
from scripts.devstack import stop_process  # noqa: E402
from tests.support.harness import TEST_TOKENS  # noqa: E402

ENGINEER = {"Authorization": f"Bearer {TEST_TOKENS['engineer']}"}
FINAL = {"completed", "not_entitled", "escalated", "cancelled", "failed"}


class PartFailed(RuntimeError):
    pass


# Status reads that failed but were retried by the driver (a real client retries a 5xx read):
# counted per part and reported, never hidden.
_transient: Counter = Counter()
_transient_lock = threading.Lock()


def _count_transient(kind: str) -> None:
    with _transient_lock:
        _transient[kind] += 1


def _take_transient() -> dict:
    with _transient_lock:
        taken = dict(_transient)
        _transient.clear()
    return taken


# -- helpers -----------------------------------------------------------------------------------

def _cpu(service, names=("app", "daprd", "floor", "placement", "scheduler", "redis")) -> dict:
    usage = {name: cpu_seconds(pid_of(service, name)) for name in names}
    usage["worker"] = cpu_seconds(service.worker_pid())
    usage["bench"] = cpu_seconds(os.getpid())
    return usage


def _cpu_delta(before: dict, after: dict) -> dict:
    return {k: round(after[k] - before[k], 2) for k in after
            if after.get(k) is not None and before.get(k) is not None and after[k] - before[k] > 0}


def _memory(service) -> dict:
    daprd = pid_of(service, "daprd")
    return {"app_rss_mb": rss_mb(pid_of(service, "app")), "worker_rss_mb": rss_mb(service.worker_pid()),
            "daprd_rss_mb": rss_mb(daprd),
            "daprd_children_rss_mb": round(sum(rss_mb(c) or 0 for c in children(daprd)), 1) if daprd else None,
            "placement_rss_mb": rss_mb(pid_of(service, "placement")),
            "scheduler_rss_mb": rss_mb(pid_of(service, "scheduler")),
            # The scheduler's embedded etcd maps its database file: how much of its resident
            # memory is that file, and how much heap.
            "scheduler_rss_file_mb": rss_mb(pid_of(service, "scheduler"), "RssFile"),
            "daprd_rss_file_mb": rss_mb(daprd, "RssFile"),
            "redis_rss_mb": rss_mb(pid_of(service, "redis")),
            **({"postgres_pss_mb": pss_tree_mb(pid_of(service, "postgres"))} if service.profile == "postgresql" else {})}


def _metrics(service) -> dict[str, float]:
    """daprd's Prometheus counters that say how much work the engine did."""
    try:
        text = httpx.get(f"http://127.0.0.1:{service.ports.dapr_metrics}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    wanted = ("dapr_runtime_workflow_operation_count", "dapr_runtime_workflow_activity_operation_count",
              "dapr_runtime_workflow_execution_count", "dapr_runtime_workflow_activity_execution_count",
              "dapr_component_state_count", "dapr_component_pubsub_egress_count",
              "dapr_grpc_io_server_completed_rpcs", "dapr_http_server_request_count",
              "dapr_scheduler_jobs_created_total")
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name not in wanted:
            continue
        try:
            value = float(line.rsplit(" ", 1)[1])
        except ValueError:
            continue
        totals[name] = totals.get(name, 0.0) + value
        if name in _BY_COMPONENT:
            # Which store or topic, and which operation, the calls go to: where to cut them.
            labels = dict(_LABEL.findall(line))
            where = labels.get("grpc_server_method") or (
                f"{labels.get('component', '?')}/{labels.get('operation', labels.get('topic', '?'))}")
            key = f"{name}{{{where}}}"
            totals[key] = totals.get(key, 0.0) + value
    return totals


_BY_COMPONENT = ("dapr_component_state_count", "dapr_component_pubsub_egress_count", "dapr_grpc_io_server_completed_rpcs")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _metrics_delta(before: dict, after: dict, per: int) -> dict:
    return {k.replace("dapr_", ""): round((after.get(k, 0) - before.get(k, 0)) / per, 2)
            for k in after if after.get(k, 0) - before.get(k, 0) > 0}


class Profiler:
    """py-spy on the app's API process and its workflow worker for the duration of a part
    (--profile DIR): samples only the threads holding the GIL (CPU, not waiting) without pausing
    them, into DIR/NAME.txt and DIR/NAME-worker.txt (collapsed stacks); `python -m
    benchmarks.profile_summary DIR/NAME.txt` prints where the time goes. Sampling costs CPU: the
    figures of a profiled run are not the benchmark's figures."""

    def __init__(self, directory: str | None, service, name: str):
        self.processes: list[subprocess.Popen] = []
        if not directory:
            return
        Path(directory).mkdir(parents=True, exist_ok=True)
        pyspy = Path(sys.executable).with_name("py-spy")
        for pid, suffix in ((pid_of(service, "app"), ""), (service.worker_pid(), "-worker")):
            if pid:
                self.processes.append(subprocess.Popen(
                    [str(pyspy), "record", "-p", str(pid), "-r", "100", "--gil", "--nonblocking", "-f", "raw",
                     "-o", str(Path(directory) / f"{name}{suffix}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _poll(fetch, until, timeout: float, interval: float):
    deadline = Deadline(timeout)
    value = fetch()
    while not until(value):
        if deadline.passed():
            raise TimeoutError(f"still {value!r} after {timeout}s")
        time.sleep(interval)
        value = fetch()
    return value


# -- part 1: the bare engine --------------------------------------------------------------------

def run_floor(service, args, name: str = "floor_shape", tag: str = "") -> dict:
    """The bare engine: `floor_shape` issues the ticket workflow's commands turn by turn (its
    history is checked for that), `floor` the first releases' smaller shape."""
    from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus

    from benchmarks.floor_app import APPROVAL_EVENT, AWAITING, floor_shape_workflow, floor_workflow

    workflow = floor_shape_workflow if name == "floor_shape" else floor_workflow
    prefix = f"{name.upper()}{tag}"
    start_floor_worker(service)
    wf = DaprWorkflowClient(host="127.0.0.1", port=str(service.ports.dapr_grpc))

    def custom(instance_id):
        try:
            return wf.get_workflow_state(instance_id, fetch_payloads=True)
        except grpc.RpcError as error:
            # daprd 1.18.1 reads a workflow's state outside the actor's lock, in two steps: a
            # save in between fails the read ("declared in metadata ... missing from state
            # store"). Transient; retried at the next poll and counted.
            _count_transient(f"GetInstance {error.code().name}")
            return None

    def one(i, prefix=prefix):
        instance_id = f"{prefix}-{i}"
        began = time.perf_counter()
        wf.schedule_new_workflow(workflow, input={"id": instance_id}, instance_id=instance_id)
        _poll(lambda: custom(instance_id), lambda s: s is not None and (s.serialized_custom_status or "").strip('"') == AWAITING,
              args.timeout, args.poll)
        waited = time.perf_counter()
        wf.raise_workflow_event(instance_id, APPROVAL_EVENT, data={"approved": True})
        state = _poll(lambda: custom(instance_id), lambda s: s is not None and s.runtime_status in (
            WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TERMINATED), args.timeout, args.poll)
        if state.runtime_status != WorkflowStatus.COMPLETED:
            raise PartFailed(f"{instance_id} ended {state.runtime_status}")
        return waited - began, time.perf_counter() - began

    try:
        for i in range(args.warmup):  # actor types, connections, caches: not measured
            one(i, prefix=f"{prefix}-WARMUP")
        _take_transient()
        cpu_before, metrics_before = _cpu(service), _metrics(service)
        with Progress(args.n, f"1/4 {name}", args.quiet, unit="wf") as progress:
            started = time.perf_counter()
            results, errors = run_concurrently(args.n, args.c, one, progress)
            elapsed = time.perf_counter() - started
        cpu = _cpu_delta(cpu_before, _cpu(service))
        metrics = _metrics_delta(metrics_before, _metrics(service), max(1, len(results)))
        history = history_size(service, [f"{prefix}-{i}" for i in range(min(10, args.n))])
    finally:
        wf.close()
        stop_floor_worker(service)
    if name == "floor_shape" and not history["ticket_shape"]:
        raise PartFailed("floor_shape did not issue the ticket workflow's commands (benchmarks/floor_app.py)")
    return {"part": name, "n": args.n, "concurrency": args.c, "completed": len(results),
            "errors": len(errors), "error_samples": errors[:5], "retried_read_errors": _take_transient(), "seconds": round(elapsed, 2),
            "workflows_per_s": round(len(results) / elapsed, 2),
            "to_waiting": latency_summary([r[0] for r in results]),
            "end_to_end": latency_summary([r[1] for r in results]),
            "cpu_s": cpu, "cpu_ms_per_workflow": round(sum(cpu.values()) * 1000 / max(1, len(results)), 1),
            "daprd_metrics_per_workflow": metrics, "history_per_workflow": history}


# -- part 2: the service -------------------------------------------------------------------------

def _stage(api: httpx.Client, ticket_id: str) -> str | None:
    response = api.get(f"/support/status/{ticket_id}")
    if response.status_code == 404:
        return None
    if response.status_code >= 500:
        _count_transient(f"status {response.status_code}")  # retried at the next poll, counted
        return None
    if response.status_code != 200:
        raise PartFailed(f"status {ticket_id}: {response.status_code} {response.text[:200]}")
    return response.json()["stage"]


def _await_stage(api: httpx.Client, ticket_id: str, until, args) -> str | None:
    """The ticket's stage once `until(stage)`: polled every --poll s (`--wait interval`), or
    asked once per change with the status's ETag and `wait` (`--wait long-poll`, the default)."""
    if args.wait == "interval":
        return _poll(lambda: _stage(api, ticket_id), until, args.timeout, args.poll)
    deadline = Deadline(args.timeout)
    etag, stage = None, None
    while True:
        headers = {"If-None-Match": etag} if etag else {}
        response = api.get(f"/support/status/{ticket_id}", headers=headers,
                           params={"wait": min(30.0, max(0.1, deadline.left))} if etag else None)
        if response.status_code == 200:
            etag, stage = response.headers.get("ETag"), response.json()["stage"]
            if until(stage):
                return stage
        elif response.status_code >= 500 or response.status_code == 404:
            _count_transient(f"status {response.status_code}")  # asked again after --poll, counted
            etag = None
            time.sleep(args.poll)
        elif response.status_code != 304:
            raise PartFailed(f"status {ticket_id}: {response.status_code} {response.text[:200]}")
        if deadline.passed():
            raise TimeoutError(f"{ticket_id} still {stage!r} after {args.timeout}s")


def _file(api: httpx.Client, body: dict, patience: float = 300) -> None:
    """Files the ticket, sent again while shed (below)."""
    _until_admitted(lambda: api.post("/support/ticket", json=body), (200, 202), f"file {body['ticket_id']}",
                    patience)


def _until_admitted(send, ok: tuple[int, ...], what: str, patience: float, requests: list | None = None) -> None:
    """A request shed by admission control (503) is sent again after its Retry-After, as a
    well-behaved client does, and counted. `requests` collects each request's (seconds, status)."""
    deadline = time.monotonic() + patience
    while True:
        began = time.perf_counter()
        response = send()
        if requests is not None:
            requests.append((time.perf_counter() - began, response.status_code))
        if response.status_code in ok:
            return
        if response.status_code == 503 and "Retry-After" in response.headers and time.monotonic() < deadline:
            _count_transient(f"{what.split()[0]} 503 (shed, retried after Retry-After)")
            time.sleep(min(float(response.headers["Retry-After"]), 5))
            continue
        raise PartFailed(f"{what}: {response.status_code} {response.text[:200]}")


def _send(api: httpx.Client, kind: str, ticket_id: str) -> httpx.Response:
    """One request of the open-loop parts: a filing ("file", the body from the id's number) or an
    approval ("decide", with an Idempotency-Key)."""
    if kind == "file":
        return api.post("/support/ticket", json=ticket_body(ticket_id, int(ticket_id.rsplit("-", 1)[1])))
    return api.post(f"/support/approve/{ticket_id}", json={"approved": True},
                    headers={"Idempotency-Key": f"bench-{ticket_id}"})


def _filings_and_decisions(filed_ids: list[str], pool_ids: list[str], send):
    """The open loop's submit for parts 3 and 3b: request k files filed_ids[k // 2] when k is even,
    and decides the next waiting ticket of pool_ids when it is odd."""
    decisions = iter(pool_ids)

    def submit(pool, k: int, scheduled: float) -> None:
        if k % 2 == 0:
            pool.submit(send, "file", filed_ids[k // 2], scheduled)
            return
        target = next(decisions, None)
        if target is None:
            raise PartFailed("the pool of waiting tickets ran out")
        pool.submit(send, "decide", target, scheduled)
    return submit


def _approve(api: httpx.Client, ticket_id: str, patience: float = 300, requests: list | None = None) -> None:
    """Approves the ticket, sent again while shed (the Idempotency-Key makes a repeat a no-op)."""
    _until_admitted(lambda: _send(api, "decide", ticket_id), (202,), f"approve {ticket_id}", patience, requests)


def _api(service, connections: int) -> httpx.Client:
    # keepalive_expiry under uvicorn's 5 s keep-alive timeout: otherwise the client may reuse a
    # connection the server is closing at that moment (ECONNRESET, a client-side race).
    return httpx.Client(base_url=service.url, headers=ENGINEER, timeout=60,
                        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                                            keepalive_expiry=2.0))


def run_service(service, args, tag: str = "") -> dict:
    api = _api(service, args.c + 8)

    def one(i, prefix=f"SVC{tag}"):
        ticket_id = f"{prefix}-{i}"
        began = time.perf_counter()
        _file(api, ticket_body(ticket_id, i))
        _await_stage(api, ticket_id, lambda s: s == "awaiting_approval" or s in FINAL, args)
        waited = time.perf_counter()
        _approve(api, ticket_id)
        stage = _await_stage(api, ticket_id, lambda s: s in FINAL, args)
        if stage != "completed":
            raise PartFailed(f"{ticket_id} ended {stage}")
        return waited - began, time.perf_counter() - began

    try:
        for i in range(args.warmup):
            one(i, prefix=f"SVC{tag}-WARMUP")
        _take_transient()
        cpu_before, metrics_before = _cpu(service), _metrics(service)
        profiler = Profiler(args.profile, service, "service")
        with Progress(args.n, "2/4 service", args.quiet, unit="ticket") as progress:
            started = time.perf_counter()
            results, errors = run_concurrently(args.n, args.c, one, progress)
            elapsed = time.perf_counter() - started
        profiler.stop()
        cpu = _cpu_delta(cpu_before, _cpu(service))
        metrics = _metrics_delta(metrics_before, _metrics(service), max(1, len(results)))
        history = history_size(service, [f"SVC{tag}-{i}" for i in range(min(10, args.n))])
    finally:
        api.close()
    return {"part": "service", "n": args.n, "concurrency": args.c, "driver_waits_by": args.wait,
            "completed": len(results),
            "errors": len(errors), "error_samples": errors[:5], "retried_read_errors": _take_transient(), "seconds": round(elapsed, 2),
            "tickets_per_s": round(len(results) / elapsed, 2),
            "to_waiting": latency_summary([r[0] for r in results]),
            "end_to_end": latency_summary([r[1] for r in results]),
            "cpu_s": cpu, "cpu_ms_per_ticket": round(sum(cpu.values()) * 1000 / max(1, len(results)), 1),
            "daprd_metrics_per_ticket": metrics, "history_per_ticket": history}


# -- part 3: endpoint latency --------------------------------------------------------------------

def _wait_all(api, ticket_ids: list[str], want: str, timeout: float, desc: str, quiet: bool,
              concurrency: int = 8) -> list[str]:
    """Polls in rounds until every ticket is in stage `want`; returns those that never got there."""
    pending = list(ticket_ids)
    deadline = Deadline(timeout)
    with Progress(len(pending), desc, quiet, unit="ticket") as progress, \
            ThreadPoolExecutor(concurrency) as pool:
        while pending and not deadline.passed():
            stages = list(pool.map(lambda t: _stage(api, t), pending))
            still = [t for t, s in zip(pending, stages) if s != want]
            bad = [(t, s) for t, s in zip(pending, stages) if s in FINAL and s != want]
            if bad:
                raise PartFailed(f"tickets ended instead of {want}: {bad[:5]}")
            progress.update(len(pending) - len(still))
            pending = still
            if pending:
                time.sleep(1.0)
    return pending


def _file_many(api, bodies: list[dict], concurrency: int, desc: str, quiet: bool) -> list[str]:
    with Progress(len(bodies), desc, quiet, unit="ticket") as progress:
        _, errors = run_concurrently(len(bodies), concurrency, lambda i: _file(api, bodies[i]), progress)
    return errors


def _open_loop(total: int, rate: float, submit, progress: Progress) -> float:
    """Sends request k at k / rate s whatever happened to the earlier ones (`submit(k,
    scheduled)` hands it to a pool of 64 threads); waits for all; returns the send window, s."""
    with ThreadPoolExecutor(64) as pool:
        start = time.perf_counter() + 0.2
        for k in range(total):
            scheduled = start + k / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            submit(pool, k, scheduled)
            progress.update()
        send_window = time.perf_counter() - start
        pool.shutdown(wait=True)
    return send_window


def run_latency(service, args, pool_ids: list[str], rate: float,
                load_of_capacity: float | None) -> tuple[dict, list[str], list[str]]:
    """Open loop: request k is sent at k / rate s, whatever happened to the earlier ones."""
    api = _api(service, 128)
    total = int(rate * args.duration)
    filed_ids = [f"LAT-F-{k}" for k in range(0, total, 2)]
    # (kind, latency from the scheduled send, code, error, how late the send left, service time)
    records: list[tuple[str, float, int | None, str | None, float, float]] = []
    lock = threading.Lock()

    def send(kind: str, target: str, scheduled: float) -> None:
        began = time.perf_counter()
        code, error = None, None
        try:
            response = _send(api, kind, target)
            code = response.status_code
            if code != 202:
                error = f"{kind} {target}: {code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{kind} {target}: {type(exc).__name__} {exc}"
        ended = time.perf_counter()
        with lock:
            records.append((kind, ended - scheduled, code, error, began - scheduled, ended - began))

    _take_transient()
    cpu_before = _cpu(service)
    profiler = Profiler(args.profile, service, "latency")
    with Progress(total, "3/4 latency", args.quiet, unit="req") as progress:
        send_window = _open_loop(total, rate, _filings_and_decisions(filed_ids, pool_ids, send), progress)
    profiler.stop()
    cpu = _cpu_delta(cpu_before, _cpu(service))
    api.close()
    decided = [t for _, t in zip(range(total // 2), pool_ids)]

    def part(kind=None):
        chosen = [r for r in records if kind is None or r[0] == kind]
        summary = latency_summary([r[1] for r in chosen])
        summary["errors"] = sum(1 for r in chosen if r[3])
        summary["service_time_p99_ms"] = latency_summary([r[5] for r in chosen])["p99_ms"]
        return summary

    errors = [r[3] for r in records if r[3]]
    late = [r[4] for r in records if r[4] > 0.005]
    return ({"part": "latency", "rate_per_s": rate, "duration_s": args.duration,
             "load_of_capacity": load_of_capacity,
             "sent": len(records), "achieved_rate_per_s": round(total / send_window, 1),
             "all": part(), "file": part("file"), "decide": part("decide"),
             "errors": len(errors), "error_samples": errors[:5],
             "sends_late_over_5ms": len(late), "cpu_s": cpu, "waiting_pool": len(pool_ids),
             "retried_read_errors": _take_transient(),
             "note": "latency counted from each request's scheduled send (open loop): a request the "
                     "client could not send on time because earlier ones had not returned waits too"},
            filed_ids, decided)


# -- part 3b: overload ----------------------------------------------------------------------------

def run_overload(service, args, rate: float, pool_ids: list[str]) -> tuple[dict, list[str]]:
    """Open loop at `rate` requests/s (above capacity) for args.overload_duration s, filings and
    decisions in turn as in part 3 (decisions on `pool_ids`, tickets already waiting): how many
    filings are accepted and how many shed (503 with Retry-After, never retried here), the
    accepted requests' latency, and that every accepted filing still reaches its decision
    (nothing accepted lost). Returns the result and the pool tickets it decided."""
    api = _api(service, 128)
    total = int(rate * args.overload_duration)
    filed_ids = [f"OVL-{k}" for k in range(0, (total + 1) // 2)]
    # (kind, ticket, code, latency, retry-after)
    records: list[tuple[str, str, int | None, float, str | None]] = []
    lock = threading.Lock()

    def send(kind: str, ticket_id: str, scheduled: float) -> None:
        code, retry_after = None, None
        try:
            response = _send(api, kind, ticket_id)
            code, retry_after = response.status_code, response.headers.get("Retry-After")
        except httpx.HTTPError:
            pass
        with lock:
            records.append((kind, ticket_id, code, time.perf_counter() - scheduled, retry_after))

    cpu_before = _cpu(service)
    with Progress(total, "overload", args.quiet, unit="req") as progress:
        _open_loop(total, rate, _filings_and_decisions(filed_ids, pool_ids, send), progress)
    cpu = _cpu_delta(cpu_before, _cpu(service))
    filings = [r for r in records if r[0] == "file"]
    accepted = [r for r in filings if r[2] == 202]
    shed = [r for r in filings if r[2] == 503]
    decided = [r for r in records if r[0] == "decide"]
    decisions_shed = [r for r in decided if r[2] == 503]
    other = [r for r in records if r[2] not in (202, 503)]
    lost = _wait_all(api, [r[1] for r in accepted], "awaiting_approval", args.timeout * 10,
                     "overload: accepted to waiting", args.quiet)
    api.close()
    return ({"part": "overload", "rate_per_s": rate, "duration_s": args.overload_duration, "sent": len(records),
             "filings": len(filings), "accepted": len(accepted), "shed_503": len(shed), "other": len(other),
             "other_codes": sorted({f"{r[0]} {r[2]}" for r in other}),
             "shed_without_retry_after": sum(1 for r in shed + decisions_shed if not r[4]),
             "accepted_latency": latency_summary([r[3] for r in accepted]),
             "shed_latency": latency_summary([r[3] for r in shed]),
             "decisions": len(decided), "decisions_accepted": sum(1 for r in decided if r[2] == 202),
             "decide_latency": latency_summary([r[3] for r in decided if r[2] == 202]),
             "decisions_shed_503": len(decisions_shed),
             "decide_shed_latency": latency_summary([r[3] for r in decisions_shed]),
             "accepted_never_waiting": len(lost), "accepted_per_s": round(len(accepted) / args.overload_duration, 2),
             "cpu_s": cpu, "max_active_tickets": _setting(service, "MAX_ACTIVE_TICKETS", "16 (default)"),
             "max_active_decisions": _setting(service, "MAX_ACTIVE_DECISIONS", "16 (default)")},
            [r[1] for r in decided if r[2] == 202])  # a shed decision's ticket is still waiting


def _setting(service, name: str, default: str) -> str:
    return service.app_env.get(name) or os.environ.get(name, default)


def _waiting_pool(service, args, n: int, prefix: str, desc: str) -> list[str]:
    """n tickets filed and waiting for a decision, for the parts that decide in an open loop."""
    api = _api(service, args.c + 8)
    pool = [ticket_body(f"{prefix}-{i}", i) for i in range(n)]
    try:
        errors = _file_many(api, pool, args.c, f"{desc}: filing the waiting pool", args.quiet)
        if errors:
            raise PartFailed(f"filing the waiting pool failed: {errors[:3]}")
        ids = [b["ticket_id"] for b in pool]
        stuck = _wait_all(api, ids, "awaiting_approval", args.timeout * 10, f"{desc}: pool to waiting", args.quiet)
    finally:
        api.close()
    if stuck:
        raise PartFailed(f"{len(stuck)} pool tickets never waited: {stuck[:5]}")
    return ids


# -- part 4: capacity ----------------------------------------------------------------------------

def run_capacity(service, args, waiting_ids: list[str]) -> list[dict]:
    """For each level of --waiting (1000,10000): tickets filed until that many wait at once, then
    every one's status, list pages, resident memory and bytes on disk per ticket filed since the
    level below; at the last level, a restart of everything (--restart), then every decision (or
    --decide-sample of them) and every ticket completed. One result per level."""
    _take_transient()
    api = _api(service, args.c + 8)
    levels: list[dict] = []
    for level in args.waiting:
        result: dict = {"part": "capacity", "target_waiting": level}
        disk_before = disk_bytes(service)
        missing = level - len(waiting_ids)
        if missing > 0:
            first = sum(lv["filed"] for lv in levels)
            bodies = [ticket_body(f"CAP-{i}", i) for i in range(first, first + missing)]
            errors = _file_many(api, bodies, args.c, f"4/4 capacity: filing to {level}", args.quiet)
            if errors:
                raise PartFailed(f"filing for capacity failed: {errors[:3]}")
            waiting_ids = waiting_ids + [b["ticket_id"] for b in bodies]
        result["filed"] = max(0, missing)
        started = time.perf_counter()
        stuck = _wait_all(api, waiting_ids, "awaiting_approval", _patience(args, len(waiting_ids)),
                          f"4/4 capacity: {level} to waiting", args.quiet)
        if stuck:
            raise PartFailed(f"{len(stuck)} tickets never reached awaiting_approval: {stuck[:5]}")
        result["seconds_until_all_waiting"] = round(time.perf_counter() - started, 1)
        result["waiting"] = len(waiting_ids)
        result["memory_all_waiting"] = _memory(service)
        # The read model's purge check lists every instance: its cost and spacing with this many.
        result["purge_check"] = api.get("/ops/system").json()["read_model"].get("purge_check")
        disk = disk_bytes(service)
        result["disk_bytes_per_waiting_ticket"] = {
            k: round((disk[k] - disk_before[k]) / missing) for k in disk} if missing > 0 else None
        result.update(_reads_while_waiting(api, args, waiting_ids))
        levels.append(result)
    result = levels[-1]
    if args.restart:
        api.close()
        result["restart"] = _restart_everything(service, waiting_ids[0], args.timeout * 10)
        api = _api(service, args.c + 8)
        waiting_ids = waiting_ids[1:]  # the first was decided by the restart measurement
    if args.decide_sample:
        # The rest stay waiting until the run stops: at 50,000 deciding all takes about an hour.
        result["decided_sample_of"] = len(waiting_ids)
        waiting_ids = waiting_ids[::max(1, len(waiting_ids) // args.decide_sample)][:args.decide_sample]

    requests: list[tuple[float, int]] = []  # every decision request: (seconds, status); list.append is atomic

    def decide_one(i):
        began = time.perf_counter()
        _approve(api, waiting_ids[i], requests=requests)
        return time.perf_counter() - began

    with Progress(len(waiting_ids), "4/4 capacity: decide", args.quiet, unit="ticket") as progress:
        started = time.perf_counter()
        latencies, errors = run_concurrently(len(waiting_ids), args.c, decide_one, progress)
    # Until each decision was accepted, Retry-After waits of shed requests included; and each
    # request alone, as the endpoint answered it (202, or 503 shed by admission control).
    result["decide"] = {**latency_summary(latencies), "errors": len(errors), "error_samples": errors[:5]}
    result["decide_requests"] = {**latency_summary([t for t, _ in requests]),
                                 "accepted": sum(code == 202 for _, code in requests),
                                 "shed_503": sum(code == 503 for _, code in requests),
                                 "accepted_p99_ms": latency_summary([t for t, code in requests if code == 202])["p99_ms"]}
    not_done = _wait_all(api, waiting_ids, "completed", _patience(args, len(waiting_ids)),
                         "4/4 capacity: completing", args.quiet)
    result["completed"] = len(waiting_ids) - len(not_done)
    result["seconds_decide_to_all_completed"] = round(time.perf_counter() - started, 1)
    result["memory_after"] = _memory(service)
    result["errors"] += result["decide"]["errors"] + len(not_done)
    result["retried_read_errors"] = _take_transient()
    api.close()
    return levels


def _patience(args, tickets: int) -> float:
    """How long a whole level may take to reach a stage: --timeout x 10, or 5 tickets a second."""
    return max(args.timeout * 10, tickets / 5)


def _reads_while_waiting(api, args, waiting_ids: list[str]) -> dict:
    """Every waiting ticket's status, and list pages as an engineer pages them, at C and at 1;
    `errors` counts the failed reads of all four."""
    def status_of(ticket_id: str) -> float:
        began = time.perf_counter()
        response = api.get(f"/support/status/{ticket_id}")
        latency = time.perf_counter() - began
        if response.status_code != 200 or response.json()["stage"] != "awaiting_approval":
            raise PartFailed(f"status {ticket_id}: {response.status_code} {response.text[:200]}")
        return latency

    reads: dict = {}
    with Progress(len(waiting_ids), "4/4 capacity: status", args.quiet, unit="ticket") as progress:
        latencies, errors = run_concurrently(len(waiting_ids), args.c, lambda i: status_of(waiting_ids[i]), progress)
    reads["status"] = {**latency_summary(latencies), "errors": len(errors), "error_samples": errors[:5]}
    # 400 of them again one at a time (spread over all): a status's own cost, without the C-1
    # requests queued before it on two cores.
    sample = waiting_ids[::max(1, len(waiting_ids) // 400)][:400]
    with Progress(len(sample), "4/4 capacity: status, one at a time", args.quiet, unit="ticket") as progress:
        latencies, errors = run_concurrently(len(sample), 1, lambda i: status_of(sample[i]), progress)
    reads["status_c1"] = {**latency_summary(latencies), "errors": len(errors), "error_samples": errors[:5]}

    # The list as an engineer pages it: filters, 50 a page, the cursor to the next page (each
    # page also reconciled with the runtime by the endpoint).
    filters = [{"awaiting_decision": "true"}, {"stage": "awaiting_approval", "priority": "high"},
               {"customer_id": "CUST001"}, {"q": "CAP-1"}, {}]

    def list_one(i):
        params = {**filters[i % len(filters)], "limit": 50}
        cursor = None
        if i % 2:  # every other call is a second page
            cursor = api.get("/support/tickets", params=params).json().get("next_cursor")
        began = time.perf_counter()
        response = api.get("/support/tickets", params={**params, **({"cursor": cursor} if cursor else {})})
        latency = time.perf_counter() - began
        if response.status_code != 200:
            raise PartFailed(f"list {params}: {response.status_code} {response.text[:200]}")
        return latency

    calls = min(400, 2 * len(waiting_ids))
    with Progress(calls, "4/4 capacity: list", args.quiet, unit="page") as progress:
        latencies, errors = run_concurrently(calls, args.c, list_one, progress)
    reads["list"] = {**latency_summary(latencies), "errors": len(errors), "error_samples": errors[:5]}
    # The same pages one at a time: what a page costs without C-1 others queued before it (at
    # C=20 on two cores, the p50 is mostly that queue: about C times one page's cost).
    with Progress(calls // 2, "4/4 capacity: list, one at a time", args.quiet, unit="page") as progress:
        latencies, errors = run_concurrently(calls // 2, 1, list_one, progress)
    reads["list_c1"] = {**latency_summary(latencies), "errors": len(errors), "error_samples": errors[:5]}
    reads["errors"] = sum(reads[k]["errors"] for k in ("status", "status_c1", "list", "list_c1"))
    return reads


def _capacity_summary(level: dict) -> dict:
    memory = level["memory_all_waiting"]
    brief = {"waiting": level["waiting"], "errors": level["errors"],
             "status_p99_ms": level["status"]["p99_ms"],
             "status_one_at_a_time_p99_ms": level["status_c1"]["p99_ms"], "list_p99_ms": level["list"]["p99_ms"],
             "list_one_at_a_time_p99_ms": level["list_c1"]["p99_ms"],
             "rss_mb": {k.removesuffix("_rss_mb"): v for k, v in memory.items() if k.endswith("_rss_mb")},
             "of_which_mapped_files_mb": {k.removesuffix("_rss_file_mb"): v for k, v in memory.items()
                                          if k.endswith("_rss_file_mb")},
             "disk_bytes_per_waiting_ticket": level["disk_bytes_per_waiting_ticket"]}
    if "decide" in level:
        brief.update(decide_p99_ms=level["decide"]["p99_ms"],
                     decide_request_p99_ms=level["decide_requests"]["p99_ms"],
                     decide_accepted_p99_ms=level["decide_requests"]["accepted_p99_ms"],
                     decide_requests_shed=level["decide_requests"]["shed_503"], completed=level["completed"],
                     seconds_decide_to_all_completed=level["seconds_decide_to_all_completed"])
    if "restart" in level:
        brief["restart"] = {k: level["restart"][k] for k in ("seconds_to_ready", "seconds_to_first_decision_completed")}
    return brief


def _levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",")]
    if not levels or any(n < 1 for n in levels) or levels != sorted(levels):
        raise argparse.ArgumentTypeError("levels are positive and rising: 1000,10000")
    return levels


def _restart_everything(service, ticket_id: str, timeout: float) -> dict:
    """Every process stopped and started again on the same data: seconds until the service is
    ready (/health/ready 200) and until a decision sent then has completed its ticket."""
    service.stop()
    started = time.perf_counter()
    service.start()
    with httpx.Client(base_url=service.url, timeout=30) as probe:
        _poll(lambda: probe.get("/health/ready").status_code, lambda code: code == 200, timeout, 0.2)
    ready = time.perf_counter() - started
    api = _api(service, 2)
    try:
        _approve(api, ticket_id)
        stage = _poll(lambda: _stage(api, ticket_id), lambda s: s in FINAL, timeout, 0.2)
    finally:
        api.close()
    return {"seconds_to_ready": round(ready, 1), "seconds_to_first_decision_completed": round(time.perf_counter() - started, 1),
            "first_ticket_stage": stage, "memory_after_restart": _memory(service)}


# -- the run -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="instances / tickets for parts 1 and 2")
    parser.add_argument("--c", type=int, default=20, help="concurrency for parts 1, 2 and 4")
    parser.add_argument("--rate", type=float,
                        help="part 3: requests/s (file + decide), instead of --latency-load")
    parser.add_argument("--latency-load", type=float, default=0.8,
                        help="part 3: the load as a share of the capacity the service part measured "
                             "(a ticket is a filing and a decision: rate = 2 x share x tickets/s)")
    parser.add_argument("--duration", type=float, default=60, help="part 3: seconds")
    parser.add_argument("--waiting", type=_levels, default=[1000, 10000],
                        help="part 4: tickets waiting at once, one level or several measured in turn (1000,10000)")
    parser.add_argument("--restart", action=argparse.BooleanOptionalAction, default=True,
                        help="part 4: stop and start every process with the last level waiting, before the decisions")
    parser.add_argument("--decide-sample", type=int, metavar="N",
                        help="part 4: decide N of the waiting tickets, spread over them, instead of every one")
    parser.add_argument("--poll", type=float, default=0.1, help="status poll interval, s (both drivers)")
    parser.add_argument("--wait", choices=("long-poll", "interval"), default="long-poll",
                        help="how the service part's driver waits for a stage: one status request per change "
                             "(ETag and `wait`) or a request every --poll s (the floor's driver polls the engine)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of parts 1 and 2 (medians)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured instances before parts 1 and 2")
    parser.add_argument("--timeout", type=float, default=120, help="per-instance timeout, s")
    parser.add_argument("--overload", type=float, default=1.5,
                        help="part 3b: the load as a multiple of the service part's capacity (filings and "
                             "decisions in turn: rate = 2 x multiple x tickets/s)")
    parser.add_argument("--overload-rate", type=float,
                        help="part 3b: requests/s, filings and decisions in turn (instead of --overload)")
    parser.add_argument("--overload-duration", type=float, default=30, help="part 3b: seconds")
    parser.add_argument("--parts", default="floor,floor_shape,service,latency,overload,capacity")
    parser.add_argument("--base-port", type=int, default=31000)
    parser.add_argument("--profile", metavar="DIR", help="py-spy the app during parts 2 and 3 into DIR")
    parser.add_argument("--workdir", type=Path, help="keep the run's data and logs here")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the stores' profile: SQLite files (the default) or a PostgreSQL server the run starts")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--workflow-versions", metavar="MODULE",
                        help="WORKFLOW_VERSIONS_MODULE of the app: an earlier release's latest version, to "
                             "compare (e.g. tests.support.release_v2)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))

    app_env = {"LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO")}
    if args.workflow_versions:
        app_env["WORKFLOW_VERSIONS_MODULE"] = args.workflow_versions
    service = new_service("bench", args.base_port, app_env=app_env, workdir=args.workdir, profile=args.store)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"part": "summary", "machine": machine(), "command": " ".join(["python -m benchmarks.bench"] + (argv or sys.argv[1:])),
                     "workdir": str(service.workdir), "loadavg_before": os.getloadavg()}
    ok = True
    rounds: dict[str, list[dict]] = {"floor": [], "floor_shape": [], "service": []}
    try:
        service.stack.up()
        service.start_sidecar()
        service.load_sample_data()
        # Parts 1 and 2 (both floors) run in --rounds interleaved rounds on the same
        # processes (the app and the floor worker take turns on daprd's app port): other load on
        # the machine then weighs on both alike. The summary takes each one's median round.
        for round_number in range(1, args.rounds + 1):
            for name in ("floor", "floor_shape", "service"):
                if name not in parts:
                    continue
                if name == "service":
                    service.start_app()
                    result = run_service(service, args, tag=f"-R{round_number}")
                    stop_process("app", service.stack.run_dir)
                else:
                    result = run_floor(service, args, name, tag=f"-R{round_number}")
                result["round"] = round_number
                emit(result)
                rounds[name].append(result)
                ok &= result["errors"] == 0
        for name, results in rounds.items():
            if results:
                rate_key = "tickets_per_s" if name == "service" else "workflows_per_s"
                cpu_key = "cpu_ms_per_ticket" if name == "service" else "cpu_ms_per_workflow"
                summary[f"{name}_{rate_key}"] = statistics.median(r[rate_key] for r in results)
                summary[f"{name}_{cpu_key}"] = statistics.median(r[cpu_key] for r in results)
                summary[f"{name}_rounds"] = [r[rate_key] for r in results]
        if rounds["service"]:
            history = rounds["service"][-1]["history_per_ticket"]
            summary["service_history_bytes_per_ticket"] = history["bytes_per_instance"]
            # The ratio means something only if the floor issued what a ticket issues.
            summary["service_issued_the_floors_shape"] = history["ticket_shape"]
            ok &= history["ticket_shape"]
        if rounds["floor_shape"]:
            summary["floor_shape_history_bytes_per_workflow"] = rounds["floor_shape"][-1]["history_per_workflow"]["bytes_per_instance"]
        service.start_app()
        waiting_ids: list[str] = []
        if "latency" in parts:
            rate, load = args.rate, None
            if not rate:
                if not summary.get("service_tickets_per_s"):
                    raise PartFailed("latency needs --rate, or the service part to measure capacity")
                load = args.latency_load
                rate = round(2 * load * summary["service_tickets_per_s"], 2)
            pool = _waiting_pool(service, args, int(rate * args.duration) // 2 + 1, "LAT-W", "3/4 latency")
            latency, filed, decided = run_latency(service, args, pool, rate, load)
            emit(latency)
            summary["latency_rate_per_s"] = rate
            summary["latency_p99_ms"] = {"file": latency["file"]["p99_ms"], "decide": latency["decide"]["p99_ms"]}
            summary["latency_errors"] = latency["errors"]
            ok &= latency["errors"] == 0
            # Still waiting afterwards: the pool's undecided rest and everything filed in part 3.
            decided_set = set(decided)
            waiting_ids = [t for t in pool if t not in decided_set] + filed
        if "overload" in parts:
            # Beyond capacity: filings and decisions in turn, as the latency part sends them, at
            # --overload times what the pipeline completes (2 requests a ticket).
            rate = args.overload_rate or (2 * args.overload * summary["service_tickets_per_s"]
                                          if summary.get("service_tickets_per_s") else None)
            if not rate:
                raise PartFailed("overload needs --overload-rate, or the service part to measure capacity")
            needed = int(rate * args.overload_duration) // 2 + 1
            if len(waiting_ids) < needed:
                waiting_ids += _waiting_pool(service, args, needed - len(waiting_ids), "OVL-W", "overload")
            overload, decided = run_overload(service, args, round(rate, 2), waiting_ids)
            decided_set = set(decided)
            waiting_ids = [t for t in waiting_ids if t not in decided_set]
            emit(overload)
            summary["overload"] = {k: overload[k] for k in ("rate_per_s", "filings", "accepted", "shed_503", "other",
                                                            "accepted_never_waiting", "decisions_accepted",
                                                            "decisions_shed_503")}
            summary["overload"]["accepted_p99_ms"] = overload["accepted_latency"]["p99_ms"]
            summary["overload"]["decide_p99_ms"] = overload["decide_latency"]["p99_ms"]
            ok &= overload["other"] == 0 and overload["accepted_never_waiting"] == 0
        if "capacity" in parts:
            levels = run_capacity(service, args, waiting_ids)
            for level in levels:
                emit(level)
            summary["capacity"] = [_capacity_summary(level) for level in levels]
            ok &= all(level["errors"] == 0 for level in levels)
    except (PartFailed, TimeoutError) as error:
        summary["error"] = str(error)
        ok = False
    finally:
        stop_all(service)
    if summary.get("floor_shape_workflows_per_s") and summary.get("service_tickets_per_s"):
        # Against the floor of the ticket's own shape (issue 13's "same workflow shape").
        summary["ratio"] = round(summary["service_tickets_per_s"] / summary["floor_shape_workflows_per_s"], 3)
        # Less sensitive to other load on the machine than throughput: CPU (all processes) per instance.
        summary["cpu_ratio"] = round(summary["floor_shape_cpu_ms_per_workflow"] / summary["service_cpu_ms_per_ticket"], 3)
        summary["ratio_by_round"] = [round(s["tickets_per_s"] / f["workflows_per_s"], 3)
                                     for f, s in zip(rounds["floor_shape"], rounds["service"])]
    if summary.get("floor_workflows_per_s") and summary.get("service_tickets_per_s"):
        # Against the first releases' smaller floor, as sessions 1-22 reported "ratio".
        summary["ratio_vs_first_floor"] = round(summary["service_tickets_per_s"] / summary["floor_workflows_per_s"], 3)
    summary["targets"] = {
        "ratio>=0.8": summary.get("ratio", 0) >= 0.8 if "ratio" in summary else None,
        "latency_p99<=50ms_no_errors": (max(summary["latency_p99_ms"].values()) <= 50 and summary["latency_errors"] == 0)
        if "latency_p99_ms" in summary else None,
        "cpu_per_ticket<=1.3x_floor": summary["cpu_ratio"] >= 1 / 1.3 if "cpu_ratio" in summary else None,
        "capacity_no_errors": all(c["errors"] == 0 for c in summary["capacity"]) if "capacity" in summary else None,
        "waiting_status_p99<=50ms": (summary["capacity"][-1]["status_p99_ms"] or float("inf")) <= 50 if "capacity" in summary else None,
        "waiting_list_p99<=50ms": (summary["capacity"][-1]["list_p99_ms"] or float("inf")) <= 50 if "capacity" in summary else None,
        "waiting_decide_p99<=100ms": (summary["capacity"][-1]["decide_p99_ms"] or float("inf")) <= 100 if "capacity" in summary else None,
        "overload_sheds_and_accepted_p99<=100ms": (summary["overload"]["shed_503"] > 0
                                                   and max(summary["overload"]["accepted_p99_ms"] or 0,
                                                           summary["overload"]["decide_p99_ms"] or 0) <= 100)
        if "overload" in summary else None,
    }
    summary["loadavg_after"] = os.getloadavg()
    summary["ok"] = ok
    emit(summary)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
