"""Starts and stops the processes the service needs besides its own: redis-server, Dapr
placement and Dapr scheduler (and, for tests, daprd and the app). Used by `make run` / `make
stop` and by the integration tests, each with its own ports and data directory.

    python scripts/devstack.py up      # start redis, placement, scheduler (if not running)
    python scripts/devstack.py down    # stop them (and anything `dapr run -f` left)
    python scripts/devstack.py status
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAPR_BIN = Path(os.environ.get("DAPR_BIN_DIR", Path.home() / ".dapr" / "bin"))


@dataclass(frozen=True)
class Ports:
    redis: int = 6380
    placement: int = 50005
    placement_healthz: int = 58080
    placement_metrics: int = 59090
    placement_raft: int = 58201
    scheduler: int = 50006
    scheduler_healthz: int = 58081
    scheduler_metrics: int = 59091
    scheduler_etcd_client: int = 52379
    scheduler_etcd_peer: int = 52380


@dataclass
class Stack:
    """The infrastructure processes of one environment (dev, or one test module)."""

    data_dir: Path
    ports: Ports = field(default_factory=Ports)

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def commands(self) -> dict[str, list[str]]:
        p = self.ports
        redis_dir = self.data_dir / "redis"
        return {
            "redis": [redis_server(), "--port", str(p.redis), "--bind", "127.0.0.1",
                      "--dir", str(redis_dir), "--appendonly", "yes", "--appendfsync", "everysec",
                      "--save", "60 1", "--protected-mode", "yes", "--daemonize", "no"],
            "placement": [str(DAPR_BIN / "placement"), "--port", str(p.placement),
                          "--listen-address", "127.0.0.1", "--healthz-port", str(p.placement_healthz),
                          "--healthz-listen-address", "127.0.0.1", "--metrics-port", str(p.placement_metrics),
                          "--metrics-listen-address", "127.0.0.1",
                          "--initial-cluster", f"dapr-placement-0=127.0.0.1:{p.placement_raft}",
                          "--log-as-json"],
            "scheduler": [str(DAPR_BIN / "scheduler"), "--port", str(p.scheduler),
                          "--listen-address", "127.0.0.1", "--healthz-port", str(p.scheduler_healthz),
                          "--healthz-listen-address", "127.0.0.1", "--metrics-port", str(p.scheduler_metrics),
                          "--metrics-listen-address", "127.0.0.1",
                          "--etcd-data-dir", str(self.data_dir / "scheduler-etcd"),
                          "--etcd-client-port", str(p.scheduler_etcd_client),
                          "--etcd-client-listen-address", "127.0.0.1",
                          "--etcd-initial-cluster", f"dapr-scheduler-server-0=http://127.0.0.1:{p.scheduler_etcd_peer}",
                          "--log-as-json"],
        }

    def readiness(self, name: str):
        p = self.ports
        return {
            "redis": lambda: port_open(p.redis),
            "placement": lambda: http_ok(f"http://127.0.0.1:{p.placement_healthz}/healthz"),
            "scheduler": lambda: http_ok(f"http://127.0.0.1:{p.scheduler_healthz}/healthz"),
        }[name]

    def up(self, timeout: float = 60) -> None:
        for sub in ("redis", "state"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        for name, command in self.commands().items():
            start_process(name, command, self.run_dir, self.log_dir, cwd=self.data_dir)
        for name in self.commands():
            wait_until(self.readiness(name), timeout, f"{name} did not become ready "
                       f"(log: {self.log_dir / (name + '.log')})")

    def down(self) -> None:
        for name in reversed(list(self.commands())):
            stop_process(name, self.run_dir)

    def status(self) -> dict[str, bool]:
        return {name: self.readiness(name)() for name in self.commands()}


def redis_server() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise SystemExit("redis-server is not installed: run scripts/ensure_redis.sh "
                         "(apt-get install redis-server)")
    return found


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


def wait_until(check, timeout: float, message: str, interval: float = 0.1) -> None:
    """Polls `check` until it is true; raises TimeoutError with `message` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(message)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(name: str, run_dir: Path) -> int | None:
    pid_file = run_dir / f"{name}.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().strip() or 0)
    return pid if pid and _pid_alive(pid) else None


def start_process(name: str, command: list[str], run_dir: Path, log_dir: Path,
                  cwd: Path | None = None, env: dict | None = None) -> int:
    """Starts `command` in its own session, logging to log_dir/name.log; reuses a live one."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    existing = read_pid(name, run_dir)
    if existing:
        return existing
    with open(log_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                   env=env, start_new_session=True)
    (run_dir / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def stop_process(name: str, run_dir: Path, sig: int = signal.SIGTERM, timeout: float = 15) -> bool:
    """Stops the process (and its process group); True if one was running."""
    pid = read_pid(name, run_dir)
    (run_dir / f"{name}.pid").unlink(missing_ok=True)
    if not pid:
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    try:
        wait_until(lambda: not _pid_alive(pid), timeout, f"{name} did not stop")
    except TimeoutError:
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: not _pid_alive(pid), 5, f"{name} did not die")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description="redis, placement and scheduler for the service")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--data-dir", default=str(REPO / ".data"))
    args = parser.parse_args()
    stack = Stack(Path(args.data_dir).resolve())
    if args.action == "up":
        stack.up()
        print(json.dumps({"started": stack.status(), "data_dir": str(stack.data_dir)}))
    elif args.action == "down":
        stack.down()
        print(json.dumps({"stopped": True}))
    else:
        status = stack.status()
        print(json.dumps(status))
        return 0 if all(status.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
