"""Real processes for integration tests: redis, placement, scheduler, daprd and the app, each
test module with its own ports and data directory. Nothing here fakes Dapr."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.devstack import (DAPR_BIN, REPO, Ports, Stack, http_ok, read_pid, start_process,
                              stop_process, wait_until)


@dataclass(frozen=True)
class ServicePorts:
    """Fixed ports per test module: `base` keeps modules apart (base 20000 -> 20xxx)."""

    base: int

    @property
    def infra(self) -> Ports:
        b = self.base
        return Ports(redis=b + 379, placement=b + 5, placement_healthz=b + 80, placement_metrics=b + 90,
                     placement_raft=b + 201, scheduler=b + 6, scheduler_healthz=b + 81,
                     scheduler_metrics=b + 91, scheduler_etcd_client=b + 378, scheduler_etcd_peer=b + 380)

    app = property(lambda self: self.base + 800)
    dapr_http = property(lambda self: self.base + 500)
    dapr_grpc = property(lambda self: self.base + 501)
    dapr_internal = property(lambda self: self.base + 502)
    dapr_metrics = property(lambda self: self.base + 92)


def render_resources(target: Path, redis_port: int, data_dir: Path) -> Path:
    """Copies resources/ with this environment's redis port and absolute data paths."""
    target.mkdir(parents=True, exist_ok=True)
    for source in (REPO / "resources").glob("*.yaml"):
        text = source.read_text()
        text = text.replace("127.0.0.1:6380", f"127.0.0.1:{redis_port}")
        text = re.sub(r'"\.data/', f'"{data_dir}/', text)
        # The knowledge-base MCP server runs from the repository, whatever daprd's directory.
        text = text.replace('"scripts/knowledge_mcp_server.sh"', f'"{REPO}/scripts/knowledge_mcp_server.sh"')
        (target / source.name).write_text(text)
    return target


TEST_TOKENS = {"client": "test-client-token", "engineer": "test-engineer-token",
               "operator": "test-operator-token", "other-client": "test-other-client-token"}
API_TOKENS = ",".join(f"{'tester-' + role}:{role.replace('other-', '')}:{token}" for role, token in TEST_TOKENS.items())


@dataclass
class Service:
    """The whole service: infrastructure, sidecar and app, started and killed like in production."""

    workdir: Path
    ports: ServicePorts
    app_env: dict[str, str] = field(default_factory=dict)
    sidecar_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = self.workdir / "data"
        self.stack = Stack(self.data_dir, self.ports.infra)
        self.resources = render_resources(self.workdir / "resources", self.ports.infra.redis, self.data_dir)

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
               if not k.startswith(("DAPR_", "OPENAI_", "LLM_", "APPROVAL_", "API_TOKENS"))}
        return env

    def start_sidecar(self) -> None:
        p = self.ports
        env = {**self._base_env(), "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "LLM_MODEL": "",
               **self.sidecar_env}
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
               **self.app_env}
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                   "--port", str(p.app), "--no-access-log"]
        # cwd is the test's own directory: a developer's .env in the repo must not leak in.
        start_process("app", command, self.stack.run_dir, self.stack.log_dir, cwd=self.workdir, env=env)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{p.app}/health"), 90,
                   f"app did not become healthy (log: {self.stack.log_dir / 'app.log'})")

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would."""
        pid = read_pid(name, self.stack.run_dir)
        assert pid, f"{name} is not running"
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: read_pid(name, self.stack.run_dir) is None, 10, f"{name} survived SIGKILL")

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
        return httpx.Client(base_url=f"http://127.0.0.1:{self.ports.dapr_http}", timeout=30)

    def state(self, store: str, key: str):
        """A value read through the sidecar's state API (None when absent)."""
        with self.sidecar() as sidecar:
            response = sidecar.get(f"/v1.0/state/{store}/{key}")
        assert response.status_code in (200, 204), response.text
        return response.json() if response.status_code == 200 and response.content else None

    def load_sample_data(self) -> None:
        import subprocess

        env = {**self._base_env(), "DAPR_HTTP_PORT": str(self.ports.dapr_http),
               "DAPR_GRPC_PORT": str(self.ports.dapr_grpc)}
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


def status_of(client: httpx.Client, ticket_id: str) -> dict:
    response = client.get(f"/support/status/{ticket_id}")
    return response.json() if response.status_code == 200 else {"http_status": response.status_code}


def wait_for_stage(client: httpx.Client, ticket_id: str, stage: str, timeout: float = 60) -> dict:
    return poll(lambda: status_of(client, ticket_id), lambda s: s.get("stage") == stage, timeout,
                message=f"ticket {ticket_id} did not reach stage {stage}")
