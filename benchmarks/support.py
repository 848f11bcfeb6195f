"""What the benchmark, the crash injection and their tests share: the workload (ticket texts),
process control on top of the test harness, resident memory, percentiles, a progress bar, and
reading what really went over Redis Streams."""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.devstack import children, process_tree, read_pid, start_process, stop_process, wait_until  # noqa: E402,F401
from tests.support.harness import Service, ServicePorts  # noqa: E402

# Entitled customers only (CUST003 is not entitled: its tickets end after triage).
CUSTOMERS = ("CUST001", "CUST002")
DESCRIPTIONS = (
    "Dapr sidecar is not connecting to my application",
    "Our production checkout service is completely down: every call through the sidecar fails "
    "with connection refused to the app on port 5000 since this morning's deploy.",
    "State store component fails to init: connection refused to redis host in staging",
    "Pub/sub messages are delivered twice to our subscriber",
    "How do I configure tracing with Zipkin?",
    "Sidecar OOMKilled in production, memory keeps growing",
    "mTLS certificates expire next week, how do we renew them?",
    "Our actors never activate in production, placement seems unreachable",
    "Workflow timers never fire on our dev cluster",
    "Service invocation between two apps returns 403 after enabling access control",
    "Cron input binding triggers twice per minute instead of once",
    "Secrets from the Kubernetes secret store come back empty in staging",
)


def ticket_body(ticket_id: str, index: int, rng: random.Random | None = None) -> dict:
    pick = rng.randrange(len(DESCRIPTIONS)) if rng else index % len(DESCRIPTIONS)
    return {"ticket_id": ticket_id, "customer_id": CUSTOMERS[index % len(CUSTOMERS)],
            "description": DESCRIPTIONS[pick]}


# -- processes ---------------------------------------------------------------------------------
# Ports: ServicePorts(base) uses base+5 .. base+800. The bases here (bench 31000, chaos 31020,
# fuzz 31040; tests 30000, 30020, 30040) interleave without sharing a port and stay below
# 32768, where Linux's ephemeral range begins (a client socket could otherwise hold one).

def new_service(name: str, base_port: int, app_env: dict | None = None, workdir: Path | None = None,
                profile: str = "sqlite") -> Service:
    """A Service (redis, placement, scheduler, daprd, app; PostgreSQL too with the postgresql
    profile) in a fresh temporary directory."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        # PostgreSQL's initdb, as root, runs as user postgres, which must reach the data directory.
        workdir.chmod(0o711)
    service = Service(workdir, ServicePorts(base_port), app_env=app_env or {}, profile=profile)
    use_sidecar_token(service)
    return service


def use_sidecar_token(service: Service) -> None:
    """Dapr SDK clients made in this process (bench.py's workflow client) carry the service's
    daprd API token: the SDK reads DAPR_API_TOKEN once, at import, into dapr.conf.settings."""
    from dapr.conf import settings

    os.environ["DAPR_API_TOKEN"] = service.dapr_api_token
    settings.DAPR_API_TOKEN = service.dapr_api_token


def start_floor_worker(service: Service) -> int:
    """The bare-engine worker (benchmarks/floor_app.py) on the service's daprd, in place of the app."""
    p = service.ports
    env = {**service._base_env(), "PYTHONPATH": str(REPO), "DAPR_GRPC_PORT": str(p.dapr_grpc),
           "DAPR_HTTP_PORT": str(p.dapr_http), "DAPR_API_TOKEN": service.dapr_api_token}
    pid = start_process("floor", [sys.executable, "-m", "benchmarks.floor_app", "--app-port", str(p.app)],
                        service.stack.run_dir, service.stack.log_dir, cwd=service.workdir, env=env)
    wait_until(lambda: port_open(p.app), 30, "floor worker did not listen on the app port")
    return pid


def stop_floor_worker(service: Service) -> None:
    stop_process("floor", service.stack.run_dir)


def stop_all(service: Service) -> None:
    stop_floor_worker(service)
    service.stop()


def pid_of(service: Service, name: str) -> int | None:
    return read_pid(name, service.stack.run_dir)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def rss_mb(pid: int | None, field: str = "VmRSS") -> float | None:
    """Resident memory of one process, MiB (from /proc): all of it (VmRSS), or its anonymous
    part (RssAnon: heaps) or its file-backed part (RssFile: mapped files, such as etcd's
    database)."""
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def pss_tree_mb(pid: int | None) -> float | None:
    """Proportional set size of a process and all its descendants, MiB: for PostgreSQL, whose
    backends share one buffer pool, a sum of RSS would count that pool once per backend."""
    if not pid:
        return None
    total = 0
    for current in process_tree(pid):
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process has used so far."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "python": sys.version.split()[0], "daprd": _dapr_version()}


def _dapr_version() -> str:
    from scripts.devstack import DAPR_BIN

    version = DAPR_BIN / "placement.version"
    return version.read_text().strip() if version.exists() else "unknown"


# -- numbers -----------------------------------------------------------------------------------

def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of the values (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


def latency_summary(latencies_s: list[float]) -> dict:
    ms = [v * 1000 for v in latencies_s]
    return {"count": len(ms), "p50_ms": _r(percentile(ms, 0.50)), "p99_ms": _r(percentile(ms, 0.99)),
            "max_ms": _r(max(ms) if ms else None), "mean_ms": _r(sum(ms) / len(ms) if ms else None)}


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


class Progress:
    """A progress bar on stderr (tqdm), or nothing with quiet=True."""

    def __init__(self, total: int | None, desc: str, quiet: bool = False, unit: str = "it"):
        self._bar = None
        if not quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=sys.stderr, unit=unit, dynamic_ncols=True,
                             leave=True, mininterval=0.5)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set(self, **fields) -> None:
        if self._bar is not None:
            self._bar.set_postfix(fields, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_concurrently(n: int, concurrency: int, one, progress: Progress | None = None) -> tuple[list, list]:
    """Runs one(i) for i in range(n) on `concurrency` threads; (results, errors)."""
    results, errors, lock = [], [], threading.Lock()
    next_index = iter(range(n))

    def worker():
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            try:
                value = one(i)
                with lock:
                    results.append(value)
            except Exception as error:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"{type(error).__name__}: {str(error)[:200]}")
            if progress is not None:
                progress.update()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


# -- what went over Redis Streams --------------------------------------------------------------

def _resp_command(sock: socket.socket, *args: str) -> object:
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    sock.sendall(payload.encode())
    reader = sock.makefile("rb")
    return _resp_read(reader)


def _resp_read(reader) -> object:
    line = reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = reader.read(size + 2)[:-2]
        return data
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_resp_read(reader) for _ in range(size)]
    raise RuntimeError(f"unexpected redis reply {line!r}")


def stream_messages(redis_port: int, stream: str) -> list[dict]:
    """Every entry ever added to a Redis stream (a topic of pubsub.redis), as CloudEvents.

    This is what was published, independent of what the app's subscriber made of it.
    """
    events: list[dict] = []
    with socket.create_connection(("127.0.0.1", redis_port), timeout=10) as sock:
        start = "-"
        while True:
            batch = _resp_command(sock, "XRANGE", stream, start, "+", "COUNT", "1000")
            if not batch:
                break
            for entry_id, fields in batch:
                values = dict(zip(fields[::2], fields[1::2]))
                raw = values.get(b"data")
                try:
                    event = json.loads(raw) if raw else {}
                except ValueError:
                    event = {"unparsed": raw.decode(errors="replace")}
                event["_stream_id"] = entry_id.decode()
                events.append(event)
            last = batch[-1][0].decode()
            ms, seq = last.split("-")
            start = f"{ms}-{int(seq) + 1}"
            if len(batch) < 1000:
                break
    return events


@dataclass
class Deadline:
    seconds: float

    def __post_init__(self) -> None:
        self.until = time.monotonic() + self.seconds

    @property
    def left(self) -> float:
        return self.until - time.monotonic()

    def passed(self) -> bool:
        return self.left <= 0


# -- bytes per ticket ----------------------------------------------------------------------------

def history_size(service: Service, instance_ids: list[str]) -> dict:
    """What the runtime keeps of each instance's history, as it stores it (protobuf bytes per
    event): the mean per instance, the event kinds that take most of it, and whether the first
    instance issued the ticket workflow's commands turn by turn (benchmarks/floor_app.py)."""
    from app.services.workflow_gateway import DaprWorkflows
    from benchmarks.floor_app import TICKET_SHAPE, command_shape

    gateway = DaprWorkflows(timeout=30, address=f"127.0.0.1:{service.ports.dapr_grpc}")
    by_kind: dict[str, int] = {}
    events = total = 0
    shape = None
    try:
        for instance_id in instance_ids:
            history = list(gateway.history(instance_id))
            shape = command_shape(history) if shape is None else shape
            for event in history:
                kind = event.WhichOneof("eventType") or "unknown"
                size = event.ByteSize()
                by_kind[kind] = by_kind.get(kind, 0) + size
                events += 1
                total += size
    finally:
        gateway.close()
    n = max(1, len(instance_ids))
    largest = sorted(by_kind.items(), key=lambda kv: -kv[1])[:4]
    return {"instances": len(instance_ids), "events_per_instance": round(events / n, 1),
            "bytes_per_instance": round(total / n), "largest_kinds_bytes_per_instance": {
                kind: round(size / n) for kind, size in largest},
            "ticket_shape": shape == TICKET_SHAPE}


def disk_bytes(service: Service) -> dict[str, int]:
    """Bytes on disk of the stores (SQLite files, or PostgreSQL's data) and the scheduler's etcd."""
    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0

    data = service.data_dir
    return {"stores": size(data / "state") + size(data / "postgres"), "scheduler_etcd": size(data / "scheduler-etcd")}
