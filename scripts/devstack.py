"""Starts and stops the processes the service needs besides its own: redis-server, Dapr
placement, Dapr scheduler and Mailpit, the local mail server that receives the customer emails
(and, for tests, daprd and the app). Used by `make run` / `make stop` and by the integration
tests, each with its own ports and data directory.

    python scripts/devstack.py up      # start redis, placement, scheduler, mailpit (if not running)
    python scripts/devstack.py down    # stop them (and anything `dapr run -f` left)
    python scripts/devstack.py status

The PostgreSQL profile (--profile postgresql) adds a PostgreSQL server on loopback with its data
in the data directory, for the state stores of resources/postgresql/:

    python scripts/devstack.py up --profile postgresql
    python scripts/devstack.py resources --profile postgresql --out .data/resources-postgresql
    export POSTGRES_CONNECTION_STRING="$(python scripts/devstack.py postgres-url)"
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
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
# The scheduler's embedded etcd keeps its Raft log in memory until a snapshot, every 100,000
# commits by default: with thousands of tickets waiting (each holds a few jobs) that log was
# most of the scheduler's memory. Every 10,000 (etcd's own former default) measured 419 -> 294 MB
# with 3,000 waiting (docs/benchmarks.md, session 10). SCHEDULER_EXTRA_ARGS adds flags for a drill.
SCHEDULER_ETCD_ARGS = ("--etcd-snapshot-count", "10000")


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
    postgres: int = 5433
    # Mailpit's defaults: SMTP for the customer-email binding, web UI and API for people.
    mailpit_smtp: int = 1025
    mailpit_http: int = 8025


PROFILES = ("sqlite", "postgresql")
POSTGRES_USER = "support"      # the role the stores connect as (owner of the database)
POSTGRES_DATABASE = "support"


@dataclass
class Stack:
    """The infrastructure processes of one environment (dev, or one test module)."""

    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    # sqlite: every store is a file of data_dir/state; postgresql: a PostgreSQL server too.
    profile: str = "sqlite"

    # Mailpit receives the customer emails (resources/notification-email.yaml).
    with_mailpit: bool = True

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; one of {', '.join(PROFILES)}")

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
                          *SCHEDULER_ETCD_ARGS, *os.environ.get("SCHEDULER_EXTRA_ARGS", "").split(), "--log-as-json"],
            **({"postgres": postgres_command(self.postgres_dir, p.postgres)}
               if self.profile == "postgresql" else {}),
            **({"mailpit": self.mailpit_command()} if self.with_mailpit else {}),
        }

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    def postgres_connection_string(self) -> str:
        """The libpq connection string of this stack's PostgreSQL (its password included)."""
        return postgres_connection_string(self.data_dir, self.ports.postgres)

    def mailpit_command(self) -> list[str]:
        p = self.ports
        return [mailpit_binary(), "--smtp", f"127.0.0.1:{p.mailpit_smtp}",
                "--listen", f"127.0.0.1:{p.mailpit_http}",
                "--database", str(self.data_dir / "mailpit" / "mailpit.db"),
                # No calls to GitHub for updates, no reverse DNS per SMTP connection.
                "--disable-version-check", "--smtp-disable-rdns"]

    @property
    def mailpit_url(self) -> str:
        """Mailpit's web UI; its API is under /api/v1 (messages: /api/v1/messages)."""
        return f"http://127.0.0.1:{self.ports.mailpit_http}"

    def start_one(self, name: str, timeout: float = 60) -> None:
        """Starts one of the processes (e.g. mailpit after a test stopped it) and waits for it."""
        (self.data_dir / "mailpit").mkdir(parents=True, exist_ok=True)
        start_process(name, self.commands()[name], self.run_dir, self.log_dir, cwd=self.data_dir)
        wait_until(self.readiness(name), timeout, f"{name} did not become ready "
                   f"(log: {self.log_dir / (name + '.log')})")

    def readiness(self, name: str):
        p = self.ports
        return {
            "redis": lambda: port_open(p.redis),
            "placement": lambda: http_ok(f"http://127.0.0.1:{p.placement_healthz}/healthz"),
            "scheduler": lambda: http_ok(f"http://127.0.0.1:{p.scheduler_healthz}/healthz"),
            "postgres": lambda: postgres_ready(p.postgres),
            "mailpit": lambda: port_open(p.mailpit_smtp) and http_ok(f"{self.mailpit_url}/readyz"),
        }[name]

    def up(self, timeout: float = 60) -> None:
        for sub in ("redis", "state"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.profile == "postgresql":
            init_postgres(self.data_dir, self.log_dir)
        (self.data_dir / "mailpit").mkdir(parents=True, exist_ok=True)
        if self.with_mailpit:
            mailpit_binary(required=True)
        for name, command in self.commands().items():
            start_process(name, command, self.run_dir, self.log_dir, cwd=self.data_dir)
        for name in self.commands():
            wait_until(self.readiness(name), timeout, f"{name} did not become ready "
                       f"(log: {self.log_dir / (name + '.log')})")
        if self.profile == "postgresql":
            ensure_postgres_database(self.data_dir, self.ports.postgres)

    def down(self) -> None:
        names = list(self.commands())
        # A PostgreSQL started by `up --profile postgresql` stops with any profile's `down`.
        names += [] if "postgres" in names else ["postgres"]
        for name in reversed(names):
            stop_process(name, self.run_dir, sig=STOP_SIGNALS.get(name, signal.SIGTERM))

    def status(self) -> dict[str, bool]:
        return {name: self.readiness(name)() for name in self.commands()}


def redis_server() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise SystemExit("redis-server is not installed: run scripts/ensure_redis.sh "
                         "(apt-get install redis-server)")
    return found


# SIGTERM asks PostgreSQL for a "smart" shutdown that waits for every client to leave; SIGINT
# is its fast shutdown: transactions roll back, the data is consistent on disk.
STOP_SIGNALS = {"postgres": signal.SIGINT}


def postgres_bin(name: str) -> str:
    """A PostgreSQL server program (postgres, initdb, psql, pg_isready) from Debian's packages."""
    bin_dir = os.environ.get("POSTGRES_BIN_DIR")
    candidates = [Path(bin_dir)] if bin_dir else sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / name).exists():
            return str(directory / name)
    raise SystemExit(f"PostgreSQL's {name} is not installed: run scripts/ensure_postgres.sh "
                     "(apt-get install postgresql-15)")


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, the server runs as the Debian package's
    postgres user (setpriv execs in place, so signals reach the server itself)."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--", *command]


def postgres_command(pgdata: Path, port: int) -> list[str]:
    # TCP on loopback only; no Unix socket (its directory would need to be reachable too).
    return _as_postgres_user([postgres_bin("postgres"), "-D", str(pgdata), "-p", str(port),
                              "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                              "-c", "logging_collector=off"])


def _postgres_password_file(data_dir: Path) -> Path:
    return data_dir / "postgres-password"


def postgres_connection_string(data_dir: Path, port: int) -> str:
    password_file = _postgres_password_file(data_dir)
    if not password_file.exists():
        raise SystemExit(f"PostgreSQL is not initialised in {data_dir}: run "
                         "scripts/devstack.py up --profile postgresql first")
    password = password_file.read_text().strip()
    return (f"host=127.0.0.1 port={port} user={POSTGRES_USER} password={password} "
            f"dbname={POSTGRES_DATABASE} sslmode=disable connect_timeout=10")


def init_postgres(data_dir: Path, log_dir: Path) -> None:
    """Creates the PostgreSQL cluster in data_dir/postgres once (initdb). Its superuser is
    POSTGRES_USER with the password POSTGRES_PASSWORD, or a generated one kept (mode 0600) in
    data_dir/postgres-password; connections need it (scram-sha-256), none is written anywhere else."""
    pgdata = data_dir / "postgres"
    if (pgdata / "PG_VERSION").exists():
        return
    password_file = _postgres_password_file(data_dir)
    if not password_file.exists():
        password_file.touch(mode=0o600)
        password_file.write_text(os.environ.get("POSTGRES_PASSWORD") or secrets.token_urlsafe(24))
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    # initdb reads the password from a file the server's user can read; it is removed after.
    pwfile = data_dir / "run" / "initdb-pwfile"
    pwfile.parent.mkdir(parents=True, exist_ok=True)
    pwfile.touch(mode=0o600)
    pwfile.write_text(password_file.read_text().strip() + "\n")
    if os.geteuid() == 0:
        shutil.chown(pgdata, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_dir / "postgres-initdb.log", "ab") as log:
            result = subprocess.run(_as_postgres_user([
                postgres_bin("initdb"), "-D", str(pgdata), "-U", POSTGRES_USER, f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--locale=C.UTF-8", "--no-instructions"]), stdout=log, stderr=subprocess.STDOUT, timeout=120)
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        hint = (" (as root it runs as user postgres, which must be able to reach the data directory:"
                " every parent directory needs o+x)") if os.geteuid() == 0 else ""
        raise RuntimeError(f"initdb failed{hint}: see {log_dir / 'postgres-initdb.log'}")


def postgres_ready(port: int) -> bool:
    result = subprocess.run([postgres_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
                            capture_output=True, timeout=10)
    return result.returncode == 0


def psql(data_dir: Path, port: int, sql: str, dbname: str = POSTGRES_DATABASE) -> str:
    """Runs one SQL statement with psql over loopback; returns its unaligned output."""
    env = {**os.environ, "PGPASSWORD": _postgres_password_file(data_dir).read_text().strip()}
    result = subprocess.run([postgres_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER,
                             "-d", dbname, "-v", "ON_ERROR_STOP=1", "-tAc", sql],
                            capture_output=True, text=True, env=env, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


def ensure_postgres_database(data_dir: Path, port: int) -> None:
    if not psql(data_dir, port, f"SELECT 1 FROM pg_database WHERE datname = '{POSTGRES_DATABASE}'", "postgres"):
        psql(data_dir, port, f"CREATE DATABASE {POSTGRES_DATABASE} OWNER {POSTGRES_USER}", "postgres")


def profile_resources(profile: str) -> list[Path]:
    """The resource files of a profile: resources/*.yaml, with the files of resources/<profile>/
    in place of those of the same name (sqlite is resources/ itself)."""
    files = {source.name: source for source in sorted((REPO / "resources").glob("*.yaml"))}
    if profile != "sqlite":
        overlay = REPO / "resources" / profile
        if not overlay.is_dir():
            raise ValueError(f"no resources for profile {profile!r} ({overlay})")
        files.update({source.name: source for source in sorted(overlay.glob("*.yaml"))})
    return list(files.values())
def mailpit_binary(required: bool = False) -> str:
    path = DAPR_BIN / "mailpit"
    if required and not path.exists():
        raise SystemExit(f"mailpit is not installed in {DAPR_BIN}: run scripts/install_mailpit.sh")
    return str(path)


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


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children(current))
    return found


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


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
    parser.add_argument("action", choices=["up", "down", "status", "resources", "postgres-url"])
    parser.add_argument("--data-dir", default=str(REPO / ".data"))
    parser.add_argument("--profile", choices=PROFILES, default="sqlite",
                        help="postgresql: also a PostgreSQL server for resources/postgresql/")
    parser.add_argument("--out", help="resources: the directory to write the profile's resources to")
    args = parser.parse_args()
    stack = Stack(Path(args.data_dir).resolve(), profile=args.profile)
    if args.action == "resources":
        out = Path(args.out or stack.data_dir / f"resources-{args.profile}").resolve()
        out.mkdir(parents=True, exist_ok=True)
        for source in profile_resources(args.profile):
            shutil.copyfile(source, out / source.name)
        print(out)
        return 0
    if args.action == "postgres-url":
        print(stack.postgres_connection_string())
        return 0
    if args.action == "up":
        stack.up()
        print(json.dumps({"started": stack.status(), "data_dir": str(stack.data_dir),
                          **({"mail_ui": stack.mailpit_url} if stack.with_mailpit else {})}))
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
