"""Real processes for integration tests: redis, placement, scheduler, daprd and the app, each
test module with its own ports and data directory. Nothing here fakes Dapr."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.devstack import (DAPR_BIN, POSTGRES_DATABASE, POSTGRES_USER, REPO, Ports, Stack, children, http_ok,
                              profile_resources, read_pid, start_process, stop_process, wait_until)


@dataclass(frozen=True)
class ServicePorts:
    """Fixed ports per test module: `base` keeps modules apart (base 20000 -> 20xxx)."""

    base: int

    @property
    def infra(self) -> Ports:
        b = self.base
        return Ports(redis=b + 379, placement=b + 5, placement_healthz=b + 80, placement_metrics=b + 90,
                     placement_raft=b + 201, scheduler=b + 6, scheduler_healthz=b + 81,
                     scheduler_metrics=b + 91, scheduler_etcd_client=b + 378, scheduler_etcd_peer=b + 380,
                     postgres=b + 900,
                     # Past the app's base + 800, below the next module's base + 1000.
                     mailpit_smtp=b + 925, mailpit_http=b + 926)

    app = property(lambda self: self.base + 800)
    dapr_http = property(lambda self: self.base + 500)
    dapr_grpc = property(lambda self: self.base + 501)
    dapr_internal = property(lambda self: self.base + 502)
    dapr_metrics = property(lambda self: self.base + 92)


def render_resources(target: Path, redis_port: int, data_dir: Path, profile: str = "sqlite",
                     smtp_port: int | None = None) -> Path:
    """Copies the profile's resources (resources/, with resources/postgresql/ over it for the
    PostgreSQL profile) with this environment's redis port and absolute data paths (and, with
    smtp_port, the port of its Mailpit in the customer-email binding)."""
    target.mkdir(parents=True, exist_ok=True)
    for source in profile_resources(profile):
        text = source.read_text()
        text = text.replace("127.0.0.1:6380", f"127.0.0.1:{redis_port}")
        text = re.sub(r'"\.data/', f'"{data_dir}/', text)
        # The knowledge-base MCP server runs from the repository, whatever daprd's directory.
        text = text.replace('"scripts/knowledge_mcp_server.sh"', f'"{REPO}/scripts/knowledge_mcp_server.sh"')
        if smtp_port is not None and source.name == "notification-email.yaml":
            text = text.replace('- name: port\n      value: "1025"', f'- name: port\n      value: "{smtp_port}"')
            assert f'value: "{smtp_port}"' in text, "notification-email.yaml: SMTP port line not found"
        (target / source.name).write_text(text)
    return target


TEST_TOKENS = {"client": "test-client-token", "engineer": "test-engineer-token",
               "operator": "test-operator-token", "other-client": "test-other-client-token",
               "scoped-client": "test-scoped-client-token"}
# The clients above are trusted integrations (every customer); scoped-client acts for CUST001 only.
TEST_SCOPES = {"scoped-client": "CUST001"}
API_TOKENS = ",".join(f"tester-{role}:client:{token}:{TEST_SCOPES[role]}" if role in TEST_SCOPES
                      else f"tester-{role}:{role.replace('other-', '')}:{token}" for role, token in TEST_TOKENS.items())


@dataclass
class Service:
    """The whole service: infrastructure, sidecar and app, started and killed like in production."""

    workdir: Path
    ports: ServicePorts
    app_env: dict[str, str] = field(default_factory=dict)
    sidecar_env: dict[str, str] = field(default_factory=dict)
    # sqlite (every store a file) or postgresql (every store, the actor store included, in a
    # PostgreSQL server the stack starts; see resources/postgresql/).
    profile: str = "sqlite"

    def __post_init__(self) -> None:
        self.data_dir = self.workdir / "data"
        self.stack = Stack(self.data_dir, self.ports.infra, profile=self.profile)
        self.resources = render_resources(self.workdir / "resources", self.ports.infra.redis, self.data_dir,
                                          self.profile, smtp_port=self.ports.infra.mailpit_smtp)
        # daprd and the app authenticate each other, with tokens of this environment's own.
        self.dapr_api_token = secrets.token_urlsafe(32)
        self.app_api_token = secrets.token_urlsafe(32)

    # -- process control -------------------------------------------------------------------
    def start(self) -> None:
        self.stack.up()
        self.start_sidecar()
        self.start_app()

    def stop(self) -> None:
        stop_process("app", self.stack.run_dir)
        stop_process("daprd", self.stack.run_dir)
        self.stack.down()

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DAPR_", "OPENAI_", "LLM_", "APPROVAL_", "API_TOKENS", "APP_API_TOKEN",
                                    "DEV_MODE", "RATE_LIMIT"))}
        return env

    def start_sidecar(self) -> None:
        p = self.ports
        env = {**self._base_env(), "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "LLM_MODEL": "",
               "DAPR_API_TOKEN": self.dapr_api_token, "APP_API_TOKEN": self.app_api_token, **self.sidecar_env}
        if self.profile == "postgresql":
            # Read by the stores through the env-secrets secret store.
            env["POSTGRES_CONNECTION_STRING"] = self.stack.postgres_connection_string()
        command = [
            str(DAPR_BIN / "daprd"), "--app-id", "support-service", "--app-port", str(p.app),
            "--app-channel-address", "127.0.0.1", "--dapr-listen-addresses", "127.0.0.1",
            "--dapr-http-port", str(p.dapr_http), "--dapr-grpc-port", str(p.dapr_grpc),
            "--dapr-internal-grpc-port", str(p.dapr_internal), "--metrics-port", str(p.dapr_metrics),
            "--placement-host-address", f"127.0.0.1:{p.infra.placement}",
            "--scheduler-host-address", f"127.0.0.1:{p.infra.scheduler}",
            "--resources-path", str(self.resources), "--config", str(self.resources / "config.yaml"),
            "--log-as-json", "--log-level", os.environ.get("TEST_DAPRD_LOG_LEVEL", "info"),
        ]
        start_process("daprd", command, self.stack.run_dir, self.stack.log_dir, cwd=self.workdir, env=env)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{p.dapr_http}/v1.0/healthz/outbound"), 60,
                   f"daprd did not start (log: {self.stack.log_dir / 'daprd.log'})")

    def start_app(self) -> None:
        p = self.ports
        env = {**self._base_env(), "PYTHONPATH": str(REPO), "DAPR_HTTP_PORT": str(p.dapr_http),
               "DAPR_GRPC_PORT": str(p.dapr_grpc), "LOG_LEVEL": "INFO", "API_TOKENS": API_TOKENS,
               "READ_MODEL_URL": self.read_model_url,
               "DAPR_API_TOKEN": self.dapr_api_token, "APP_API_TOKEN": self.app_api_token,
               # Tests and benchmarks poll fast with one token; the rate limit's own test sets a low one.
               "RATE_LIMIT": "1000000/minute",
               # The local Mailpit's log settles a delivery whose outcome a crash left unknown.
               "EMAIL_SENT_LOG_URL": self.stack.mailpit_url if self.stack.with_mailpit else "", **self.app_env}
        if self.profile == "postgresql":
            # The read model's password, read by libpq (READ_MODEL_URL holds none).
            env["PGPASSWORD"] = (self.data_dir / "postgres-password").read_text().strip()
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                   "--port", str(p.app), "--no-access-log"]
        # cwd is the test's own directory: a developer's .env in the repo must not leak in.
        start_process("app", command, self.stack.run_dir, self.stack.log_dir, cwd=self.workdir, env=env)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{p.app}/health"), 90,
                   f"app did not become healthy (log: {self.stack.log_dir / 'app.log'})")

    @property
    def read_model_url(self) -> str:
        """SQLite file in the data directory; the PostgreSQL profile's is in the stack's
        PostgreSQL (schema readmodel), as the replicas share it."""
        if self.profile == "postgresql":
            return f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.ports.infra.postgres}/{POSTGRES_DATABASE}"
        return f"sqlite:///{self.read_model_path}"

    @property
    def read_model_path(self) -> Path:
        return self.data_dir / "read-model" / "read-model.db"

    def read_model_has(self, ticket_id: str) -> bool:
        """Whether the SQLite read model holds the ticket's row, read from its file (no request
        to the app, so nothing reconciles it meanwhile)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.read_model_path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT 1 FROM tickets WHERE ticket_id = ?", (ticket_id,)).fetchone() is not None

    def delete_read_model(self) -> None:
        """Removes the read model's files (the app must be stopped)."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.read_model_path}{suffix}").unlink(missing_ok=True)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would."""
        pid = read_pid(name, self.stack.run_dir)
        assert pid, f"{name} is not running"
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: read_pid(name, self.stack.run_dir) is None, 10, f"{name} survived SIGKILL")

    def worker_pid(self) -> int | None:
        """The app's workflow worker process (WORKER_MODE=process, the default), else None."""
        app = read_pid("app", self.stack.run_dir)
        return next(iter(children(app)), None) if app else None

    def kill_worker(self) -> int:
        """SIGKILL to the worker process alone, as its own crash would; returns its pid."""
        pid = self.worker_pid()
        assert pid, "no worker process is running"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: self.worker_pid() != pid, 10, "the worker process survived SIGKILL")
        return pid

    def restart_app(self) -> None:
        stop_process("app", self.stack.run_dir)
        self.start_app()

    # -- API -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.app}"

    def client(self, role: str | None = "engineer", **kwargs) -> httpx.Client:
        """An HTTP client of the app, authenticated with the test token of `role`."""
        headers = {"Authorization": f"Bearer {TEST_TOKENS[role]}"} if role else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers, **kwargs)

    def sidecar(self) -> httpx.Client:
        """An HTTP client of daprd's API, with its API token."""
        return httpx.Client(base_url=f"http://127.0.0.1:{self.ports.dapr_http}", timeout=30,
                            headers={"dapr-api-token": self.dapr_api_token})

    def workflow_actor_types(self) -> set[str]:
        """The workflow and activity actor types the sidecar hosts now (its metadata)."""
        with self.sidecar() as sidecar:
            metadata = sidecar.get("/v1.0/metadata", timeout=10).json()
        return {a["type"] for a in (metadata.get("actorRuntime") or {}).get("activeActors") or []
                if a["type"].endswith((".workflow", ".activity"))}

    def state(self, store: str, key: str):
        """A value read through the sidecar's state API (None when absent)."""
        with self.sidecar() as sidecar:
            response = sidecar.get(f"/v1.0/state/{store}/{key}")
        assert response.status_code in (200, 204), response.text
        return response.json() if response.status_code == 200 and response.content else None

    def load_sample_data(self) -> None:
        import subprocess

        env = {**self._base_env(), "DAPR_HTTP_PORT": str(self.ports.dapr_http),
               "DAPR_GRPC_PORT": str(self.ports.dapr_grpc), "DAPR_API_TOKEN": self.dapr_api_token}
        subprocess.run([sys.executable, str(REPO / "setup_sample_data.py")], env=env, check=True,
                       capture_output=True, timeout=60)


def poll(fetch, until, timeout: float = 60, interval: float = 0.2, message: str = ""):
    """Calls fetch() until until(value) holds; returns that value or fails with the last one."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = fetch()
        if until(value):
            return value
        time.sleep(interval)
    raise AssertionError(f"{message or 'condition not met'} within {timeout}s; last value: {value!r}")


def pause(service, ticket_id: str) -> None:
    """Suspends the ticket's workflow through the sidecar's API, as an operator's tool would."""
    with service.sidecar() as sidecar:
        response = sidecar.post(f"/v1.0/workflows/dapr/{ticket_id}/pause")
    assert response.status_code == 202, response.text


def resume(service, ticket_id: str) -> None:
    with service.sidecar() as sidecar:
        response = sidecar.post(f"/v1.0/workflows/dapr/{ticket_id}/resume")
    assert response.status_code == 202, response.text


def status_of(client: httpx.Client, ticket_id: str) -> dict:
    response = client.get(f"/support/status/{ticket_id}")
    return response.json() if response.status_code == 200 else {"http_status": response.status_code}


def wait_for_stage(client: httpx.Client, ticket_id: str, stage: str, timeout: float = 60) -> dict:
    return poll(lambda: status_of(client, ticket_id), lambda s: s.get("stage") == stage, timeout,
                message=f"ticket {ticket_id} did not reach stage {stage}")


def mailpit_messages(service: Service, query: str | None = None) -> list[dict]:
    """The messages the service's Mailpit holds, newest first, through Mailpit's HTTP API
    (/api/v1/messages, or /api/v1/search?query=... with a Mailpit search query)."""
    url = service.stack.mailpit_url
    with httpx.Client(base_url=url, timeout=10) as mailpit:
        response = (mailpit.get("/api/v1/search", params={"query": query, "limit": 500}) if query
                    else mailpit.get("/api/v1/messages", params={"limit": 500}))
    response.raise_for_status()
    return response.json()["messages"] or []


def mailpit_message(service: Service, message_id: str) -> dict:
    """One message in full (From, To, Subject, Text, HTML, headers summary) from Mailpit."""
    with httpx.Client(base_url=service.stack.mailpit_url, timeout=10) as mailpit:
        response = mailpit.get(f"/api/v1/message/{message_id}")
    response.raise_for_status()
    return response.json()


# -- the supervised, replicated service ----------------------------------------------------------
class Cluster:
    """The supervised service of scripts/cluster.py (the topology `make run REPLICAS=N` runs)
    for one test module: every process under supervisord; with replicas > 1, PostgreSQL, three
    placement and three scheduler nodes, N apps with N sidecars, and HAProxy in front."""

    def __init__(self, workdir: Path, base: int, replicas: int = 3, app_env: dict[str, str] | None = None,
                 profile: str | None = None):
        from scripts.cluster import Cluster as Supervised, ClusterPorts

        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.ports = ClusterPorts.from_base(base, replicas)
        self.replicas = replicas
        profile = profile or ("postgresql" if replicas > 1 else "sqlite")
        resources = render_resources(workdir / "resources", self.ports.redis, self.data_dir, profile,
                                     smtp_port=self.ports.mailpit_smtp)
        self.dapr_api_token = secrets.token_urlsafe(32)
        self.app_api_token = secrets.token_urlsafe(32)
        self.supervised = Supervised(self.data_dir, self.ports, replicas, profile, resources_dir=resources,
                                     app_env={"LOG_LEVEL": "INFO", "RATE_LIMIT": "1000000/minute", **(app_env or {})},
                                     log_level=os.environ.get("TEST_DAPRD_LOG_LEVEL", "info"))
        self.profile = self.supervised.profile

    def _env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("DAPR_", "OPENAI_", "LLM_", "APPROVAL_", "API_TOKENS", "APP_API_TOKEN",
                                     "DEV_MODE", "RATE_LIMIT", "PG", "POSTGRES_", "READ_MODEL"))}
        return {**base, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "LLM_MODEL": "", "API_TOKENS": API_TOKENS,
                "DAPR_API_TOKEN": self.dapr_api_token, "APP_API_TOKEN": self.app_api_token}

    def start(self, timeout: float = 180) -> None:
        self.supervised.up(env=self._env(), after_sidecars=self.load_sample_data)
        self.supervised.wait_ready(timeout)
        if self.replicas > 1:
            poll(self.haproxy_servers, lambda s: len(s) == self.replicas and set(s.values()) == {"UP"}, 30,
                 interval=0.5, message="HAProxy does not see every replica UP")

    def stop(self) -> None:
        self.supervised.down()

    def load_sample_data(self) -> None:
        import subprocess

        env = {**self._env(), "DAPR_HTTP_PORT": str(self.ports.dapr_http[0]),
               "DAPR_GRPC_PORT": str(self.ports.dapr_grpc[0])}
        subprocess.run([sys.executable, str(REPO / "setup_sample_data.py")], env=env, check=True,
                       capture_output=True, timeout=120)

    # -- processes ----------------------------------------------------------------------------
    def status(self) -> dict[str, dict]:
        return self.supervised.status()

    def pid(self, name: str) -> int | None:
        state = self.status().get(name) or {}
        return state.get("pid") if state.get("state") == "RUNNING" else None

    def kill(self, name: str) -> int:
        """SIGKILL to the program's process group (its children too), as a crash would; the
        pid that was killed."""
        pid = self.pid(name)
        assert pid, f"{name} is not running: {self.status().get(name)}"
        os.killpg(pid, signal.SIGKILL)
        return pid

    def hold_down(self, name: str) -> None:
        """Keeps a program stopped (a lost node): frozen (SIGSTOP), supervisord told to stop it,
        then SIGKILLed while it stops. Killed first, supervisord would start it again at once, and
        the new process would take its graceful shutdown (15 s for daprd) instead of vanishing."""
        pid = self.pid(name)
        assert pid, f"{name} is not running: {self.status().get(name)}"
        os.killpg(pid, signal.SIGSTOP)
        stopping = threading.Thread(target=self.supervised.supervisorctl, args=("stop", name), kwargs={"check": False})
        stopping.start()
        poll(lambda: self.status().get(name, {}).get("state"), lambda s: s in ("STOPPING", "STOPPED"), 20,
             interval=0.05, message=f"supervisord did not begin stopping {name}")
        os.killpg(pid, signal.SIGKILL)
        stopping.join(timeout=30)

    def release(self, name: str) -> None:
        self.supervised.supervisorctl("start", name, check=False)

    def replace_app(self, replica: int, env: dict[str, str]) -> None:
        """A rolling upgrade's step (scripts/cluster.py), then HAProxy sees the replica UP again."""
        self.supervised.replace_app(replica, env)
        poll(self.haproxy_servers, lambda s: s.get(f"app-{replica}") == "UP", 30, interval=0.3,
             message=f"HAProxy does not see app-{replica} UP after its upgrade")

    def haproxy_servers(self) -> dict[str, str]:
        """Each backend server's state in HAProxy (its stats CSV): {"app-0": "UP", ...}."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.ports.haproxy_stats}/;csv", timeout=5).text
        except httpx.HTTPError:
            return {}
        rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
        return {r[1]: r[17].split(" ")[0] for r in rows if r[0] == "replicas" and r[1].startswith("app-")}

    def metrics(self, replica: int) -> dict[str, float]:
        """daprd's Prometheus counters of one replica, summed over their labels."""
        text = httpx.get(f"http://127.0.0.1:{self.ports.dapr_metrics[replica]}/metrics", timeout=10).text
        totals: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name = line.split("{", 1)[0].split(" ", 1)[0]
                try:
                    totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
                except ValueError:
                    pass
        return totals

    # -- API ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The API: HAProxy with replicas, the app itself with one."""
        return f"http://127.0.0.1:{self.ports.api}"

    def client(self, role: str | None = "engineer", **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TEST_TOKENS[role]}"} if role else {}
        return httpx.Client(base_url=self.url, **{"timeout": 30, **kwargs}, headers=headers)

    def sidecar(self, replica: int = 0) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.ports.dapr_http[replica]}", timeout=30,
                            headers={"dapr-api-token": self.dapr_api_token})

    def state(self, store: str, key: str, replica: int = 0):
        with self.sidecar(replica) as sidecar:
            response = sidecar.get(f"/v1.0/state/{store}/{key}")
        assert response.status_code in (200, 204), response.text
        return response.json() if response.status_code == 200 and response.content else None

    @property
    def stack(self):
        """What mailpit_messages() needs of a service: the Mailpit URL."""
        return _MailpitOnly(f"http://127.0.0.1:{self.ports.mailpit_http}")

    def keep_logs(self) -> str:
        """Copies every log of the cluster where a failed run can be read after the test has
        removed its directory, and says where; with the lines that explain most failures: the
        API's sidecar errors and daprd's errors."""
        kept = Path(tempfile.gettempdir()) / "support-test-logs" / time.strftime("replicas-%Y%m%dT%H%M%S")
        shutil.copytree(self.supervised.log_dir, kept, dirs_exist_ok=True)
        out = [f"the cluster's logs are kept in {kept}"]
        for log in sorted(kept.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            picked = [line for line in lines if "sidecar error answered 500" in line or '"level":"error"' in line]
            if picked:
                out.append(f"--- {log.name}: {len(picked)} error lines, the last 10 ---\n" + "\n".join(picked[-10:]))
        return "\n".join(out)

    def logs(self, lines: int = 30) -> str:
        out = []
        for log in sorted(self.supervised.log_dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name} (last {len(tail)} lines) ---\n" + "\n".join(tail))
        return "\n".join(out)


@dataclass(frozen=True)
class _MailpitOnly:
    mailpit_url: str
