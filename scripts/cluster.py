"""The supervised topology of the service: every process under supervisord, which restarts
whichever one crashes (app, daprd, redis, placement, scheduler, postgres, haproxy, mailpit).
Shared by `make run` (scripts/run.sh) and the supervised integration tests
(tests/support/harness.py `Cluster`).

- replicas=1, profile sqlite (the single-machine default): redis, one placement, one scheduler,
  Mailpit, one daprd and the app on the API port.
- replicas>1 (the replicated profile, PostgreSQL implied): PostgreSQL, redis, three placement
  nodes (Raft), three scheduler nodes (an embedded etcd cluster of three), Mailpit, N apps with N
  daprd sidecars of the same app id on distinct ports, and HAProxy on the API port in front of
  the apps, health-checking /health/ready.

    python scripts/cluster.py up --replicas 3     # start (or adopt) and wait until ready
    python scripts/cluster.py status              # supervisorctl status
    python scripts/cluster.py down

supervisord's config is generated under the data directory (run/supervisord.conf). It holds no
secret: tokens and the PostgreSQL password reach the processes through supervisord's own
environment, which they inherit.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.devstack import (DAPR_BIN, POSTGRES_DATABASE, POSTGRES_USER, REPO, SCHEDULER_ETCD_ARGS,  # noqa: E402
                              ensure_postgres_database, http_ok, init_postgres, mailpit_binary, port_open, postgres_bin,
                              postgres_command, postgres_ready, profile_resources, redis_server, wait_until)

APP_ID = "support-service"
VENV_BIN = REPO / ".venv" / "bin"


@dataclass(frozen=True)
class ClusterPorts:
    """Every port of one environment. `dev()` is `make run`'s; `from_base(b)` a test module's
    (all within b+5..b+999)."""

    api: int                       # the app (one replica) or HAProxy's frontend
    haproxy_stats: int
    redis: int
    postgres: int
    mailpit_smtp: int
    mailpit_http: int
    placement: tuple[int, ...]
    placement_healthz: tuple[int, ...]
    placement_metrics: tuple[int, ...]
    placement_raft: tuple[int, ...]
    scheduler: tuple[int, ...]
    scheduler_healthz: tuple[int, ...]
    scheduler_metrics: tuple[int, ...]
    scheduler_etcd_client: tuple[int, ...]
    scheduler_etcd_peer: tuple[int, ...]
    apps: tuple[int, ...]
    dapr_http: tuple[int, ...]
    dapr_grpc: tuple[int, ...]
    dapr_internal: tuple[int, ...]
    dapr_metrics: tuple[int, ...]

    @classmethod
    def dev(cls, replicas: int) -> "ClusterPorts":
        three = range(3)
        single = replicas == 1
        return cls(api=8000, haproxy_stats=8404, redis=6380, postgres=5433, mailpit_smtp=1025, mailpit_http=8025,
                   placement=tuple(50005 + 100 * i for i in three), placement_healthz=tuple(58080 + i for i in three),
                   placement_metrics=tuple(59090 + 10 * i for i in three), placement_raft=tuple(58201 + i for i in three),
                   scheduler=tuple(50006 + 100 * i for i in three), scheduler_healthz=tuple(58180 + i for i in three),
                   scheduler_metrics=tuple(59091 + 10 * i for i in three),
                   scheduler_etcd_client=tuple(52379 + 10 * i for i in three),
                   scheduler_etcd_peer=tuple(52380 + 10 * i for i in three),
                   # One replica: the ports of dapr.yaml (app 8000, daprd 3500/50001, metrics 9090).
                   apps=(8000,) if single else tuple(8001 + r for r in range(replicas)),
                   dapr_http=(3500,) if single else tuple(3501 + r for r in range(replicas)),
                   dapr_grpc=(50001,) if single else tuple(50011 + r for r in range(replicas)),
                   dapr_internal=(50002,) if single else tuple(50021 + r for r in range(replicas)),
                   dapr_metrics=(9090,) if single else tuple(9091 + r for r in range(replicas)))

    @classmethod
    def from_base(cls, base: int, replicas: int) -> "ClusterPorts":
        b, three, rs = base, range(3), range(replicas)
        single = replicas == 1
        return cls(api=b + 800 if single else b + 850, haproxy_stats=b + 851, redis=b + 379, postgres=b + 900,
                   mailpit_smtp=b + 925, mailpit_http=b + 926,
                   placement=tuple(b + 10 + i for i in three), placement_healthz=tuple(b + 20 + i for i in three),
                   placement_metrics=tuple(b + 30 + i for i in three), placement_raft=tuple(b + 40 + i for i in three),
                   scheduler=tuple(b + 50 + i for i in three), scheduler_healthz=tuple(b + 60 + i for i in three),
                   scheduler_metrics=tuple(b + 70 + i for i in three),
                   scheduler_etcd_client=tuple(b + 100 + i for i in three),
                   scheduler_etcd_peer=tuple(b + 110 + i for i in three),
                   apps=tuple(b + 800 + r for r in rs), dapr_http=tuple(b + 500 + 10 * r for r in rs),
                   dapr_grpc=tuple(b + 501 + 10 * r for r in rs), dapr_internal=tuple(b + 502 + 10 * r for r in rs),
                   dapr_metrics=tuple(b + 503 + 10 * r for r in rs))


@dataclass
class Program:
    name: str
    command: list[str]
    ready: object             # () -> bool
    priority: int             # start order: lower first (supervisord and up() both use it)
    environment: dict[str, str] | None = None
    stopsignal: str = "TERM"


class Cluster:
    """One supervised environment: its programs, supervisord's config, start, stop, status."""

    def __init__(self, data_dir: Path, ports: ClusterPorts, replicas: int = 1, profile: str | None = None,
                 resources_dir: Path | None = None, app_env: dict[str, str] | None = None,
                 with_mailpit: bool = True, log_level: str = "info"):
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.data_dir = data_dir
        self.ports = ports
        self.replicas = replicas
        # Replicas share their state and read model: more than one implies PostgreSQL.
        self.profile = profile or ("postgresql" if replicas > 1 else "sqlite")
        if replicas > 1 and self.profile != "postgresql":
            raise ValueError("replicas share their stores: REPLICAS>1 needs PROFILE=postgresql")
        # An HA control plane (3 placement, 3 scheduler) with replicas; one node of each otherwise.
        self.control_plane = 3 if replicas > 1 else 1
        self.resources_dir = resources_dir or data_dir / f"resources-{self.profile}"
        self.app_env = app_env or {}
        # A replica's own settings over app_env: a rolling upgrade gives one replica at a time
        # the new build's (replace_app).
        self.replica_env: dict[int, dict[str, str]] = {}
        self.with_mailpit = with_mailpit
        self.log_level = log_level

    # -- layout ---------------------------------------------------------------------------
    run_dir = property(lambda self: self.data_dir / "run")
    log_dir = property(lambda self: self.data_dir / "logs")
    config_path = property(lambda self: self.run_dir / "supervisord.conf")
    socket_path = property(lambda self: self.run_dir / "supervisor.sock")
    supervisor_log = property(lambda self: self.log_dir / "supervisord.log")

    @property
    def read_model_url(self) -> str:
        if self.profile == "postgresql":
            # No password in the URL: libpq reads PGPASSWORD from the environment.
            return f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.ports.postgres}/{POSTGRES_DATABASE}"
        return f"sqlite:///{self.data_dir / 'state' / 'read-model.db'}"

    def mail_log_env(self) -> dict[str, str]:
        """The local Mailpit as the mail server's log (app/delivery/sent_log.py), unless the
        environment names another (EMAIL_SENT_LOG_URL, also when set empty)."""
        if not self.with_mailpit or "EMAIL_SENT_LOG_URL" in os.environ:
            return {}
        return {"EMAIL_SENT_LOG_URL": f"http://127.0.0.1:{self.ports.mailpit_http}"}

    def placement_addresses(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports.placement[:self.control_plane])

    def scheduler_addresses(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports.scheduler[:self.control_plane])

    def programs(self) -> list[Program]:
        p, n = self.ports, self.control_plane
        programs: list[Program] = []
        if self.profile == "postgresql":
            programs.append(Program("postgres", postgres_command(self.data_dir / "postgres", p.postgres),
                                    lambda: postgres_ready(p.postgres), 10, stopsignal="INT"))
        programs.append(Program("redis", [redis_server(), "--port", str(p.redis), "--bind", "127.0.0.1",
                                          "--dir", str(self.data_dir / "redis"), "--appendonly", "yes",
                                          "--appendfsync", "everysec", "--save", "60 1", "--protected-mode", "yes",
                                          "--daemonize", "no"], lambda: port_open(p.redis), 10))
        if self.with_mailpit:
            programs.append(Program("mailpit", [
                mailpit_binary(required=True), "--smtp", f"127.0.0.1:{p.mailpit_smtp}",
                "--listen", f"127.0.0.1:{p.mailpit_http}", "--database", str(self.data_dir / "mailpit" / "mailpit.db"),
                "--disable-version-check", "--smtp-disable-rdns"],
                lambda: port_open(p.mailpit_smtp) and http_ok(f"http://127.0.0.1:{p.mailpit_http}/readyz"), 10))
        raft = ",".join(f"dapr-placement-{i}=127.0.0.1:{p.placement_raft[i]}" for i in range(n))
        etcd = ",".join(f"dapr-scheduler-server-{i}=http://127.0.0.1:{p.scheduler_etcd_peer[i]}" for i in range(n))
        for i in range(n):
            programs.append(Program(f"placement-{i}", [
                str(DAPR_BIN / "placement"), "--id", f"dapr-placement-{i}", "--port", str(p.placement[i]),
                "--listen-address", "127.0.0.1", "--healthz-port", str(p.placement_healthz[i]),
                "--healthz-listen-address", "127.0.0.1", "--metrics-port", str(p.placement_metrics[i]),
                "--metrics-listen-address", "127.0.0.1", "--initial-cluster", raft, "--log-as-json"],
                lambda i=i: http_ok(f"http://127.0.0.1:{p.placement_healthz[i]}/healthz"), 20))
            programs.append(Program(f"scheduler-{i}", [
                str(DAPR_BIN / "scheduler"), "--id", f"dapr-scheduler-server-{i}", "--port", str(p.scheduler[i]),
                "--listen-address", "127.0.0.1", "--healthz-port", str(p.scheduler_healthz[i]),
                "--healthz-listen-address", "127.0.0.1", "--metrics-port", str(p.scheduler_metrics[i]),
                "--metrics-listen-address", "127.0.0.1",
                "--override-broadcast-host-port", f"127.0.0.1:{p.scheduler[i]}",
                "--etcd-data-dir", str(self.data_dir / f"scheduler-etcd-{i}"),
                "--etcd-client-port", str(p.scheduler_etcd_client[i]), "--etcd-client-listen-address", "127.0.0.1",
                "--etcd-initial-cluster", etcd, *SCHEDULER_ETCD_ARGS, "--log-as-json"],
                # An etcd member is healthy only once a quorum formed: all nodes start together.
                lambda i=i: http_ok(f"http://127.0.0.1:{p.scheduler_healthz[i]}/healthz"), 20))
        for r in range(self.replicas):
            programs.append(Program(f"daprd-{r}", [
                str(DAPR_BIN / "daprd"), "--app-id", APP_ID, "--app-port", str(p.apps[r]),
                "--app-channel-address", "127.0.0.1", "--dapr-listen-addresses", "127.0.0.1",
                "--dapr-http-port", str(p.dapr_http[r]), "--dapr-grpc-port", str(p.dapr_grpc[r]),
                "--dapr-internal-grpc-port", str(p.dapr_internal[r]), "--metrics-port", str(p.dapr_metrics[r]),
                "--placement-host-address", self.placement_addresses(),
                "--scheduler-host-address", self.scheduler_addresses(),
                "--resources-path", str(self.resources_dir), "--config", str(self.resources_dir / "config.yaml"),
                "--log-as-json", "--log-level", self.log_level],
                lambda r=r: http_ok(f"http://127.0.0.1:{p.dapr_http[r]}/v1.0/healthz/outbound"), 30))
        for r in range(self.replicas):
            programs.append(Program(f"app-{r}", [
                str(VENV_BIN / "python"), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                "--port", str(p.apps[r]), "--no-access-log"],
                lambda r=r: http_ok(f"http://127.0.0.1:{p.apps[r]}/health/live"), 40,
                environment={"PYTHONPATH": str(REPO), "DAPR_HTTP_PORT": str(p.dapr_http[r]),
                             "DAPR_GRPC_PORT": str(p.dapr_grpc[r]), "READ_MODEL_URL": self.read_model_url,
                             "REPLICA": str(r),
                             # supervisord starts a sidecar that exits again: the app may restart
                             # one on which the runtime wedged a workflow (app/core/sidecar_watchdog.py).
                             "SIDECAR_WATCHDOG": "true", **self.mail_log_env(), **self.app_env,
                             **self.replica_env.get(r, {})}))
        if self.replicas > 1:
            programs.append(Program("haproxy", [haproxy_binary(), "-db", "-f", str(self.run_dir / "haproxy.cfg")],
                                    lambda: port_open(p.api), 50))
        return programs

    def haproxy_config(self) -> str:
        servers = "\n".join(f"    server app-{r} 127.0.0.1:{port} check" for r, port in enumerate(self.ports.apps))
        return f"""# Generated by scripts/cluster.py: the API of every replica behind one port.
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    # A replica that is down (connection refused) is retried on another one.
    retries 3
    option redispatch
frontend api
    bind 127.0.0.1:{self.ports.api}
    default_backend replicas
backend replicas
    balance roundrobin
    # A replica takes traffic only when ready (worker connected, placement, scheduler, stores,
    # data); checked every second, out after 3 failures, back after 2 successes. A check may
    # take 5 s: on a saturated machine a slower answer is not a lost replica (with 2 s, all
    # three were taken out at once under the benchmark's load).
    option httpchk GET /health/ready
    http-check expect status 200
    timeout check 5s
    default-server inter 1s fall 3 rise 2
{servers}
frontend stats
    bind 127.0.0.1:{self.ports.haproxy_stats}
    stats enable
    stats uri /
"""

    def supervisor_config(self) -> str:
        sections = [f"""; Generated by scripts/cluster.py. Every program restarts when it exits (autorestart): at
; once when it had run for startsecs, else with a growing delay (1 s, 2 s, ...) for up to
; startretries tries. Programs start in order through up(), not by supervisord itself.
[unix_http_server]
file={self.socket_path}
chmod=0700

[supervisord]
logfile={self.supervisor_log}
logfile_maxbytes=10MB
pidfile={self.run_dir / 'supervisord.pid'}
directory={self.data_dir}
nodaemon=false
loglevel=info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{self.socket_path}
"""]
        for program in self.programs():
            env = ""
            if program.environment:
                env = "environment=" + ",".join(f'{k}="{_escape(v)}"' for k, v in program.environment.items()) + "\n"
            sections.append(f"""[program:{program.name}]
command={" ".join(_quote(arg) for arg in program.command)}
directory={self.data_dir}
priority={program.priority}
autostart=false
autorestart=true
startsecs=1
startretries=20
stopsignal={program.stopsignal}
stopwaitsecs=15
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={self.log_dir / (program.name + '.log')}
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=1
{env}""")
        return "\n".join(sections)

    # -- control ----------------------------------------------------------------------------
    def prepare(self) -> None:
        for sub in ("redis", "state", "mailpit", "read-model", "run", "logs"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        if self.profile == "postgresql":
            if os.geteuid() == 0:
                # As root the server runs as user postgres, which must traverse the data directory
                # (make run's secrets directory inside keeps its own 0700).
                self.data_dir.chmod(self.data_dir.stat().st_mode | 0o001)
            init_postgres(self.data_dir, self.log_dir)
        if not (self.resources_dir / "config.yaml").exists():
            write_resources(self.resources_dir, self.profile, self.data_dir, self.ports)
        (self.run_dir / "haproxy.cfg").write_text(self.haproxy_config())
        self.config_path.write_text(self.supervisor_config())

    def supervisor_env(self, extra: dict[str, str]) -> dict[str, str]:
        """supervisord's environment, inherited by every program: the shared secrets live here."""
        env = {**os.environ, **extra}
        if self.profile == "postgresql":
            password = (self.data_dir / "postgres-password").read_text().strip()
            env["PGPASSWORD"] = password
            env["POSTGRES_CONNECTION_STRING"] = (
                f"host=127.0.0.1 port={self.ports.postgres} user={POSTGRES_USER} password={password} "
                f"dbname={POSTGRES_DATABASE} sslmode=disable connect_timeout=10")
        return env

    def supervisorctl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(self.config_path), *args],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"supervisorctl {' '.join(args)} failed ({result.returncode}): "
                               f"{result.stdout.strip()} {result.stderr.strip()}")
        return result.stdout

    def supervisor_running(self) -> bool:
        return self.socket_path.exists() and subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(self.config_path), "pid"],
            capture_output=True, text=True, timeout=20).stdout.strip().isdigit()

    def up(self, env: dict[str, str] | None = None, timeout: float = 120, after_sidecars=None) -> None:
        """Starts supervisord, then each program in order, waiting until it is ready.
        after_sidecars() runs once every daprd answers (e.g. loading the sample data)."""
        self.prepare()
        if not self.supervisor_running():
            # Its own messages go to its log file; what it says before daemonizing (a bad
            # config) goes to supervisord-start.log.
            with open(self.log_dir / "supervisord-start.log", "ab") as start_log:
                subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(self.config_path)], check=True,
                               env=self.supervisor_env(env or {}), timeout=30, stdout=start_log,
                               stderr=subprocess.STDOUT)
            wait_until(self.supervisor_running, 30, f"supervisord did not start ({self.supervisor_log})")
        programs = self.programs()
        for priority in sorted({p.priority for p in programs}):
            batch = [p for p in programs if p.priority == priority]
            # All nodes of a tier at once: an etcd or Raft member waits for its peers.
            self.supervisorctl("start", *[p.name for p in batch], check=False)
            for program in batch:
                wait_until(program.ready, timeout, f"{program.name} did not become ready "
                           f"(log: {self.log_dir / (program.name + '.log')})", interval=0.2)
            if priority == 10 and self.profile == "postgresql":
                ensure_postgres_database(self.data_dir, self.ports.postgres)
            if priority == 30 and after_sidecars is not None:
                after_sidecars()

    def replace_app(self, replica: int, env: dict[str, str], timeout: float = 120) -> None:
        """One step of a rolling upgrade, as Kubernetes replaces a pod: the replica's app stopped
        (SIGTERM: it drains), its sidecar restarted too (its workflow actors move to the other
        replicas and back, as placement rebalances), then the app started with `env` over its
        settings (a new build's); returns once it is ready. supervisord's `update` re-reads the
        changed program."""
        self.replica_env[replica] = dict(env)
        self.config_path.write_text(self.supervisor_config())
        self.supervisorctl("reread")
        self.supervisorctl("update", f"app-{replica}")
        self.supervisorctl("restart", f"daprd-{replica}")
        sidecar = next(p for p in self.programs() if p.name == f"daprd-{replica}")
        wait_until(sidecar.ready, timeout, f"daprd-{replica} did not come back", interval=0.2)
        self.supervisorctl("start", f"app-{replica}", check=False)
        port = self.ports.apps[replica]
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health/ready"), timeout,
                   f"app-{replica} did not become ready after its upgrade (log: {self.log_dir / f'app-{replica}.log'})",
                   interval=0.2)

    def wait_ready(self, timeout: float = 180) -> None:
        """Every app answers /health/ready (and HAProxy, with replicas, sees them)."""
        for port in self.ports.apps[:self.replicas]:
            wait_until(lambda port=port: http_ok(f"http://127.0.0.1:{port}/health/ready"), timeout,
                       f"the app on {port} did not become ready (logs: {self.log_dir})", interval=0.5)

    def down(self) -> None:
        if self.config_path.exists() and self.supervisor_running():
            # Apps first, then sidecars, then the rest: reverse priority order.
            programs = self.programs()
            for priority in sorted({p.priority for p in programs}, reverse=True):
                self.supervisorctl("stop", *[p.name for p in programs if p.priority == priority], check=False)
            self.supervisorctl("shutdown", check=False)
            pid_file = self.run_dir / "supervisord.pid"
            wait_until(lambda: not self.supervisor_running(), 60, "supervisord did not stop")
            pid_file.unlink(missing_ok=True)

    def status(self) -> dict[str, dict]:
        """Each program's state and pid, from supervisorctl status ({} when supervisord is not running)."""
        if not self.config_path.exists() or not self.supervisor_running():
            return {}
        out = self.supervisorctl("status", check=False)
        states = {}
        for line in out.splitlines():
            match = re.match(r"(\S+)\s+(\S+)\s*(?:pid (\d+))?", line)
            if match:
                states[match[1]] = {"state": match[2], "pid": int(match[3]) if match[3] else None}
        return states

    def restarts(self) -> list[str]:
        """supervisord's lines of processes that exited unexpectedly and were spawned again."""
        if not self.supervisor_log.exists():
            return []
        return [line for line in self.supervisor_log.read_text().splitlines()
                if "not expected" in line or "gave up" in line or "backoff" in line.lower()]


def _quote(arg: str) -> str:
    # supervisord splits command= with shlex; % starts an expansion and must be doubled.
    import shlex
    return shlex.quote(arg).replace("%", "%%")


def _escape(value: str) -> str:
    return value.replace("%", "%%").replace('"', '\\"')


def haproxy_binary() -> str:
    import shutil
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        raise SystemExit("haproxy is not installed: run scripts/ensure_haproxy.sh (apt-get install haproxy)")
    return found


def write_resources(target: Path, profile: str, data_dir: Path, ports: ClusterPorts) -> Path:
    """The profile's resources with this environment's redis port, Mailpit SMTP port and
    absolute data paths."""
    target.mkdir(parents=True, exist_ok=True)
    for source in profile_resources(profile):
        text = source.read_text().replace("127.0.0.1:6380", f"127.0.0.1:{ports.redis}")
        text = re.sub(r'"\.data/', f'"{data_dir}/', text)
        text = text.replace('"scripts/knowledge_mcp_server.sh"', f'"{REPO}/scripts/knowledge_mcp_server.sh"')
        if source.name == "notification-email.yaml":
            text = text.replace('- name: port\n      value: "1025"', f'- name: port\n      value: "{ports.mailpit_smtp}"')
        (target / source.name).write_text(text)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description="the supervised service (make run)")
    parser.add_argument("action", choices=["up", "down", "status", "restarts", "config"])
    parser.add_argument("--data-dir", default=str(REPO / ".data"))
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--profile", choices=["sqlite", "postgresql"])
    parser.add_argument("--load-sample-data", action="store_true")
    args = parser.parse_args()
    data_dir = Path(args.data_dir).resolve()
    cluster = Cluster(data_dir, ClusterPorts.dev(args.replicas), args.replicas, args.profile)
    if args.action == "config":
        cluster.prepare()
        print(cluster.config_path)
    elif args.action == "up":
        def load():
            env = {**os.environ, "DAPR_HTTP_PORT": str(cluster.ports.dapr_http[0]),
                   "DAPR_GRPC_PORT": str(cluster.ports.dapr_grpc[0])}
            subprocess.run([str(VENV_BIN / "python"), str(REPO / "setup_sample_data.py")], env=env, check=True,
                           cwd=REPO, timeout=120)
        started = time.monotonic()
        cluster.up(after_sidecars=load if args.load_sample_data else None)
        cluster.wait_ready()
        print(f"[cluster] {args.replicas} replica(s), profile {cluster.profile}, ready in "
              f"{time.monotonic() - started:.0f}s; supervisorctl -c {cluster.config_path} status", file=sys.stderr)
    elif args.action == "down":
        cluster.down()
    elif args.action == "restarts":
        print("\n".join(cluster.restarts()))
    else:
        for name, state in cluster.status().items():
            print(f"{name:14} {state['state']:10} {state['pid'] or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
