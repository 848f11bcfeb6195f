"""The replicated profile on real processes, every one under supervisord (scripts/cluster.py,
the topology of `make run REPLICAS=3`): PostgreSQL, redis, three placement nodes (Raft), three
scheduler nodes (embedded etcd), Mailpit, three apps with three daprd sidecars of one app id, and
HAProxy in front of the API. Every request of these tests goes through HAProxy.

Failover: tickets spread over every replica and each is mailed once; a replica's app and daprd
SIGKILLed mid-run; a placement and a scheduler node lost mid-run while a durable timer is armed;
one process of each kind killed under load and brought back by the supervisor alone; and
everything stopped and started again. The spread test files REPLICAS_TEST_TICKETS (300) tickets;
the others fewer, so the module stays within minutes on two cores.

One failure is the runtime's, not the service's: with a control-plane process killed mid-turn,
daprd 1.18.1 has recorded one step of a workflow twice, and that instance then stayed RUNNING with
no step able to run, or (session 18) its replay failed it (docs/benchmarks.md, "Runtime problems
found"). The worker now skips such a copy on replay (app/workflows/sdk_patches.py); the
kill-each-kind test still tells such an instance apart by that history and reports it as an
expected failure; every other ticket must still complete. The other failure seen (stop 28's CI):
daprd handed a workflow's turn out during the placement kill and never got the answer, so every
decision for it ran into the sidecar's deadline for minutes; the sidecar watchdog (on in this
profile) restarts such a sidecar, so the driver waits for decisions up to 300 s.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from app.workflows.contracts import TICKET_WORKFLOW_LATEST
from benchmarks.support import _resp_command, ticket_body
from tests.support.harness import Cluster, mailpit_messages, poll
from tests.support.workflow_next import NEXT

BASE_PORT = 17000  # ClusterPorts.from_base(17000, 3): 17010..17926, below the ephemeral ports
TICKETS = int(os.environ.get("REPLICAS_TEST_TICKETS", "300"))
KILL_TICKETS = 60
APPROVAL_TIMEOUT_S = 20
RETRYABLE = (502, 503, 504)
# A synthetic customer for the SLA drill (SLA_OVERRIDE_CUSTOMERS): its first-response target is
# DRILL_SLA_S, shorter than the approval timeout, so both durable timers fire in order.
DRILL_CUSTOMER = {"customer_id": "DRILL-1", "name": "SLA Drill Ltd", "plan": "professional",
                  "contact_email": "drill@sla-drill.example"}
DRILL_SLA_S = 8


@pytest.fixture(scope="module")
def cluster(request):
    # Not under pytest's 0700 temporary directory: as root, PostgreSQL runs as user postgres.
    workdir = Path(tempfile.mkdtemp(prefix="support-replicas-"))
    workdir.chmod(0o711)
    # The SLA is shortened for the drill customer alone: the other tests' tickets keep their plan's.
    cluster = Cluster(workdir, BASE_PORT, replicas=3, app_env={
        "APPROVAL_TIMEOUT": f"{APPROVAL_TIMEOUT_S}s", "SLA_OVERRIDE": f"{DRILL_SLA_S}s",
        "SLA_OVERRIDE_CUSTOMERS": DRILL_CUSTOMER["customer_id"]})
    try:
        cluster.start()
        yield cluster
    finally:
        if request.session.testsfailed:
            print(cluster.logs())
            print(cluster.keep_logs())
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# -- a client that behaves like a real one behind a load balancer -------------------------------
# 500s with a sidecar error seen while a store or sidecar restarts (test of each kind): the API
# answers them for a store call that failed (it should be 503 + Retry-After). Filing and
# deciding are idempotent, so the client retries them, and every one is counted and printed.
SIDECAR_500S: list[str] = []


def _retrying(send, ok: tuple[int, ...], timeout: float = 90, retry_sidecar_500: bool = False,
              give_up=lambda response: False) -> httpx.Response:
    """Sends until an `ok` answer (or one `give_up` accepts, returned as it is); a 502/503/504
    or a broken connection (a replica just died) is retried, anything else fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = send()
            if response.status_code in ok or give_up(response):
                return response
            if retry_sidecar_500 and response.status_code == 500 and "sidecar error" in response.text:
                SIDECAR_500S.append(response.text[:200])
            elif response.status_code not in RETRYABLE:
                raise AssertionError(f"{response.status_code} {response.text[:300]}")
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.TransportError as error:
            last = repr(error)
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer in {ok} within {timeout}s; the last: {last}")
        time.sleep(0.3)


def _stage(api: httpx.Client, ticket_id: str) -> str | None:
    try:
        response = api.get(f"/support/status/{ticket_id}")
    except httpx.TransportError:
        return None
    return response.json().get("stage") if response.status_code == 200 else None


FINAL_STAGES = {"completed", "not_entitled", "escalated", "cancelled", "failed"}
# Where each ticket of run_tickets is, and since when (seconds on the monotonic clock): what a
# driver that did not finish prints, so a failure says which tickets held it and where.
PROGRESS: dict[str, tuple[str, float]] = {}


def _at(ticket_id: str, phase: str) -> None:
    if PROGRESS.get(ticket_id, ("",))[0] != phase:
        PROGRESS[ticket_id] = (phase, time.monotonic())


def run_tickets(cluster: Cluster, ids: list[str], approve: bool = True, concurrency: int = 8,
                timeout: float = 240, retry_sidecar_500: bool = False) -> dict[str, str]:
    """Files each ticket, approves it once it waits (one Idempotency-Key per ticket), and waits
    for its final stage; every call through HAProxy. {ticket id: final stage}."""
    def one(index_and_id):
        index, ticket_id = index_and_id
        with cluster.client(timeout=30) as api:
            _at(ticket_id, "filing")
            # Up to 300 s: with a scheduler down when daprd creates the start's reminder, the
            # instance stays "pending" without its start event for minutes, and the API answers
            # 503 "being created" until daprd starts it (seen: about two minutes).
            _retrying(lambda: api.post("/support/ticket", json=ticket_body(ticket_id, index)), (200, 202),
                      timeout=300, retry_sidecar_500=retry_sidecar_500)
            ALL_TICKETS.append(ticket_id)  # accepted: the stop-and-start test looks for it
            deadline = time.monotonic() + timeout
            approved = False
            while time.monotonic() < deadline:
                stage = _stage(api, ticket_id)
                _at(ticket_id, f"stage {stage}")
                if stage in FINAL_STAGES:
                    return ticket_id, stage
                if stage == "awaiting_approval" and approve and not approved:
                    _at(ticket_id, "approving")
                    # Up to 300 s: a workflow the runtime wedged (it handed out a turn and never
                    # got the answer) holds every decision past the sidecar's deadline until the
                    # sidecar watchdog restarts that sidecar, after SIDECAR_WATCHDOG_AFTER (60 s)
                    # of them (app/core/sidecar_watchdog.py; seen in CI, stop 28).
                    # A 409 "moved on" is returned, not retried: the workflow went on without the
                    # decision (its approval timer fired while the decision was held), and the
                    # ticket's final stage says so; each test judges that stage.
                    _retrying(lambda: api.post(f"/support/approve/{ticket_id}", json={"approved": True},
                                               headers={"Idempotency-Key": f"test-{ticket_id}"}), (202,),
                              timeout=300, retry_sidecar_500=retry_sidecar_500,
                              give_up=lambda r: r.status_code == 409 and "moved on before the decision" in r.text)
                    approved = True
                time.sleep(0.4)
            return ticket_id, f"timeout (last stage {stage})"

    with ThreadPoolExecutor(concurrency) as pool:
        return dict(pool.map(one, enumerate(ids)))


def mails_per_ticket(cluster: Cluster, ids: list[str]) -> dict[str, int]:
    subjects = [m["Subject"] for m in mailpit_messages(cluster)]
    return {t: sum(1 for s in subjects if f"Ticket {t}:" in s) for t in ids}


def assert_each_mailed_once(cluster: Cluster, ids: list[str], kind: str = "resolved") -> None:
    # Delivery follows completion closely but not in the same step: poll until settled.
    counts = poll(lambda: mails_per_ticket(cluster, ids), lambda c: all(n >= 1 for n in c.values()), 60,
                  interval=1, message="a ticket was never mailed")
    assert {t: n for t, n in counts.items() if n != 1} == {}, "tickets mailed other than once"
    for ticket_id in ids:
        record = cluster.state("analysis-state", f"notification:{ticket_id}:{kind}")
        assert record and record["kind"] == kind, (ticket_id, record)


def workflow_work(cluster: Cluster) -> list[tuple[float, float]]:
    """(workflow executions, activity executions) counted by each replica's daprd."""
    out = []
    for replica in range(cluster.replicas):
        metrics = cluster.metrics(replica)
        out.append((metrics.get("dapr_runtime_workflow_execution_count", 0.0),
                    metrics.get("dapr_runtime_workflow_activity_execution_count", 0.0)))
    return out


# Every ticket a test of this module filed (run_tickets adds its own as it files them), for the
# stop-and-start test at the end.
ALL_TICKETS: list[str] = []


class Driver(threading.Thread):
    """run_tickets in the background; wait() returns its result or raises what it raised."""

    def __init__(self, work, cluster: Cluster, ids: list[str]):
        super().__init__(daemon=True)
        self.work, self.cluster, self.ids, self.result, self.error = work, cluster, ids, None, None
        self.start()

    def run(self):
        try:
            self.result = self.work()
        except BaseException as error:  # noqa: BLE001 - re-raised in wait()
            self.error = error

    def wait(self, timeout: float) -> dict[str, str]:
        self.join(timeout)
        # On one line, so that a CI summary shows which tickets held the driver and where.
        assert not self.is_alive(), f"the ticket driver did not finish within {timeout}s: {self.unfinished()}"
        if self.error is not None:
            raise self.error
        return self.result

    def unfinished(self) -> str:
        """Each ticket not at its final stage: where the driver is with it and since when, and
        what the runtime holds of it; then HAProxy's view of the replicas."""
        now, parts = time.monotonic(), []
        for ticket_id in self.ids:
            phase, since = PROGRESS.get(ticket_id, ("not started", now))
            if phase.removeprefix("stage ") not in FINAL_STAGES:
                described = describe_instance(self.cluster, ticket_id) if phase != "not started" else ""
                parts.append(f"{ticket_id} {phase} {now - since:.0f}s {described}")
        return " | ".join(parts) + f" | HAProxy {self.cluster.haproxy_servers()}"


# -- the tests -------------------------------------------------------------------------------------
def test_the_topology_is_supervised_with_an_ha_control_plane(cluster):
    status = cluster.status()
    expected = {"postgres", "redis", "mailpit", "haproxy", *(f"placement-{i}" for i in range(3)),
                *(f"scheduler-{i}" for i in range(3)), *(f"daprd-{r}" for r in range(3)), *(f"app-{r}" for r in range(3))}
    assert set(status) == expected
    assert {s["state"] for s in status.values()} == {"RUNNING"}
    assert cluster.haproxy_servers() == {"app-0": "UP", "app-1": "UP", "app-2": "UP"}
    for replica in range(3):
        with cluster.sidecar(replica) as sidecar:
            metadata = sidecar.get("/v1.0/metadata").json()
        assert metadata["id"] == "support-service"
        assert "connected" in metadata["actorRuntime"]["placement"]
        assert metadata["scheduler"]["connected_addresses"], metadata.get("scheduler")
        # The daprd 1.18.1 deadlock workaround holds on every replica: the knowledge-base
        # MCPServer loaded beside the connected workflow worker (readiness checks both).
        assert {"name": "knowledge-base"} in metadata["mcpServers"], metadata.get("mcpServers")
        assert metadata["workflows"]["connectedWorkers"] >= 1, metadata.get("workflows")
    # One consumer group per topic stream, named for the app id and shared by the three
    # sidecars (the pub/sub component's consumerID defaults to the app id): each message is
    # handled by one replica.
    with socket.create_connection(("127.0.0.1", cluster.ports.redis), timeout=10) as redis:
        _, streams = _resp_command(redis, "SCAN", "0", "TYPE", "stream", "COUNT", "10000")
        assert streams, "no pub/sub stream in redis"
        for stream in streams:
            groups = [dict(zip(g[::2], g[1::2])) for g in _resp_command(redis, "XINFO", "GROUPS", stream.decode())]
            assert [g[b"name"] for g in groups] == [b"support-service"], (stream, groups)


def test_tickets_through_haproxy_spread_over_every_replica_and_are_mailed_once(cluster):
    before = workflow_work(cluster)
    ids = [f"SPREAD-{i}" for i in range(TICKETS)]
    started = time.monotonic()
    stages = run_tickets(cluster, ids)
    elapsed = time.monotonic() - started
    assert {t: s for t, s in stages.items() if s != "completed"} == {}
    after = workflow_work(cluster)
    work = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(after, before)]
    print(f"{TICKETS} tickets in {elapsed:.1f}s; (workflow, activity) executions per replica: {work}")
    assert all(workflows > 0 and activities > 0 for workflows, activities in work), work
    assert_each_mailed_once(cluster, ids)


def test_a_replica_killed_mid_run_loses_no_ticket_and_decisions_reach_every_ticket(cluster):
    ids = [f"KILL-{i}" for i in range(KILL_TICKETS)]
    old = {name: cluster.pid(name) for name in ("app-1", "daprd-1")}
    driver = Driver(lambda: run_tickets(cluster, ids), cluster, ids)
    # Mid-run: once some tickets wait for their decision (their workflows are spread over
    # the replicas, some on replica 1).
    with cluster.client() as api:
        poll(lambda: sum(_stage(api, t) in ("awaiting_approval", "completed") for t in ids[:10]),
             lambda n: n >= 3, 120, interval=0.5, message="no ticket got to its decision")
    cluster.kill("app-1")
    cluster.kill("daprd-1")
    result = driver.wait(400)
    assert set(result) == set(ids)
    assert {t: s for t, s in result.items() if s != "completed"} == {}
    assert_each_mailed_once(cluster, ids)
    # The supervisor brought both back on its own.
    status = cluster.status()
    for name, pid in old.items():
        assert status[name]["state"] == "RUNNING" and status[name]["pid"] != pid, (name, status[name])
    assert any("daprd-1 (terminated by SIGKILL; not expected)" in line for line in cluster.supervised.restarts())


def _leader(cluster: Cluster) -> str:
    """The placement node holding Raft leadership: the one whose log last says it acquired it
    (without losing it since); node 0 when no log says so."""
    for i in range(3):
        log = cluster.supervised.log_dir / f"placement-{i}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        if text.rfind("leadership acquired") > text.rfind("leadership lost"):
            return f"placement-{i}"
    return "placement-0"


def test_losing_a_placement_and_a_scheduler_node_keeps_tickets_flowing_and_a_timer_fires_once(cluster):
    placement, scheduler = _leader(cluster), "scheduler-0"
    cluster.hold_down(placement)
    cluster.hold_down(scheduler)
    try:
        assert cluster.status()[placement]["state"] == "STOPPED"
        timer_ticket = "TIMER-1"
        ALL_TICKETS.append(timer_ticket)
        with cluster.sidecar(1) as sidecar:
            stored = sidecar.post("/v1.0/state/customer-state",
                                  json=[{"key": DRILL_CUSTOMER["customer_id"], "value": DRILL_CUSTOMER}])
            assert stored.status_code == 204, stored.text
        with cluster.client() as api:
            # 200 too: a start held past its deadline while placement elects a leader answers
            # 503, and the filing sent again finds the ticket started (the same content).
            _retrying(lambda: api.post("/support/ticket", json={
                "ticket_id": timer_ticket, "customer_id": DRILL_CUSTOMER["customer_id"],
                "description": "Messages published to the orders topic never reach the subscriber"}), (200, 202))
        ids = [f"LOSS-{i}" for i in range(20)]
        stages = run_tickets(cluster, ids)
        assert {t: s for t, s in stages.items() if s != "completed"} == {}
        # Nobody decides TIMER-1: its two durable timers (in the scheduler cluster of two
        # remaining nodes) fire once each: the SLA's first-response deadline (an escalation
        # while the wait goes on), then the approval timeout, which ends the ticket escalated.
        with cluster.client() as api:
            status = poll(lambda: api.get(f"/support/status/{timer_ticket}").json(),
                          lambda s: s.get("stage") == "escalated", APPROVAL_TIMEOUT_S + 90, interval=1,
                          message="the approval timer did not fire")
        assert status["output"]["escalation"]["reason"] == "approval_timeout"
        assert status["escalations"] == ["sla_breach", "approval_timeout"], status["escalations"]
        filed, due = (datetime.fromisoformat(status[k]) for k in ("created_at", "sla_due"))
        assert abs((due - filed).total_seconds() - DRILL_SLA_S) < 2, (filed, due)
        inbox = poll(lambda: cluster.state("analysis-state", f"inbox:ticket-escalations:{timer_ticket}"),
                     lambda v: v is not None and len(v["messages"]) >= 2, 30, message="escalations not received")
        assert sorted(m["id"] for m in inbox["messages"]) == [
            f"{timer_ticket}:escalation:approval_timeout", f"{timer_ticket}:escalation:sla_breach"], inbox
        assert_each_mailed_once(cluster, [timer_ticket], kind="escalated")
    finally:
        cluster.release(placement)
        cluster.release(scheduler)
    # Up to two minutes: while a node is down, a client socket may take one of its ports as an
    # ephemeral port (these test ports lie in Linux's 32768-60999 range); supervisord retries
    # with backoff until it is free.
    poll(lambda: {n: cluster.status()[n]["state"] for n in (placement, scheduler)},
         lambda s: set(s.values()) == {"RUNNING"}, 120, interval=1, message="the nodes did not come back")


KINDS = ("app-2", "daprd-2", "redis", "postgres", "placement-1", "scheduler-2", "haproxy", "mailpit")


def _spawned_after(cluster: Cluster, name: str, since: datetime) -> datetime | None:
    """When supervisord's log says it spawned `name` after `since` (its local time, ms)."""
    log = cluster.supervised.supervisor_log.read_text(errors="replace")
    for line in log.splitlines():
        if f"spawned: '{name}'" in line:
            at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            if at > since:
                return at
    return None


def test_one_process_of_each_kind_killed_under_load_comes_back_within_5s_unaided(cluster):
    ids = [f"CRASH-{i}" for i in range(20)]
    driver = Driver(lambda: run_tickets(cluster, ids, concurrency=4, timeout=300, retry_sidecar_500=True),
                    cluster, ids)
    back_in = {}
    for name in KINDS:
        killed_at = datetime.now()
        pid = cluster.kill(name)
        # When supervisord spawned it again, by its own log (the clock of supervisorctl calls
        # on a loaded machine would add their own seconds).
        spawned = poll(lambda: _spawned_after(cluster, name, killed_at), lambda t: t is not None, 15,
                       interval=0.2, message=f"{name} was not restarted")
        back_in[name] = round((spawned - killed_at).total_seconds(), 2)
        assert cluster.status()[name]["pid"] != pid
        # The next kill only once this one runs again (RUNNING: up for startsecs).
        poll(lambda: cluster.status()[name]["state"], lambda s: s == "RUNNING", 60, interval=0.2,
             message=f"{name} did not stay up")
    print(f"restarted by supervisord after SIGKILL, seconds: {back_in}")
    assert {n: t for n, t in back_in.items() if t > 5} == {}
    # Generous: a ticket whose step meets the redis and then the postgres outage waits each
    # out on a 30 s durable timer (the ride-out-outages patch), and the driver runs its 20
    # tickets four at a time. Passing runs take about a minute; what must hold is that all complete.
    result = driver.wait(900)
    answered_500 = [line[:400] for log in cluster.supervised.log_dir.glob("app-*.log")
                    for line in log.read_text(errors="replace").splitlines() if "sidecar error answered 500" in line]
    print(f"API 500s (sidecar errors) retried while processes restarted: {len(SIDECAR_500S)} {answered_500[:5]}")
    watchdog = [line for log in cluster.supervised.log_dir.glob("app-*.log")
                for line in log.read_text(errors="replace").splitlines() if "app.core.sidecar_watchdog" in line]
    print(f"sidecar watchdog: {len(watchdog)} lines {[line[:300] for line in watchdog[:5]]}")
    # Tickets the runtime wedged and the watchdog healed by restarting a sidecar (named in its
    # log): held past this module's 20 s approval timeout meanwhile, they may end `escalated`
    # (approval_timeout) instead of completed (seen in CI: CRASH-6's decisions held 70 s).
    healed = {i for line in watchdog if "restarting it" in line for i in json.loads(line).get("instances", [])}
    assert set(result) == set(ids)
    unfinished = {t: s for t, s in result.items() if s != "completed"}
    for ticket_id in unfinished:
        print(f"--- {ticket_id}: {describe_instance(cluster, ticket_id)}")
    # A ticket the runtime itself wedged (module docstring) is told apart; every other must complete.
    wedged = {t: fault for t in unfinished if (fault := runtime_fault(cluster, t))}
    escalated_while_healed = {t for t, s in unfinished.items() if t in healed and s == "escalated"}
    if escalated_while_healed:
        print(f"wedged, healed by the sidecar watchdog, escalated on their approval timeout: {escalated_while_healed}")
    assert {t: s for t, s in unfinished.items() if t not in wedged and t not in escalated_while_healed} == {}
    restarts = cluster.supervised.restarts()
    for name in KINDS:
        assert any(f"exited: {name} (terminated by SIGKILL; not expected)" in line for line in restarts), name
    cluster.supervised.wait_ready(120)
    if wedged:
        # Kept for study: the cluster's logs and each wedged instance's whole history.
        kept = cluster.keep_logs()
        print(kept)
        kept_dir = Path(kept.splitlines()[0].rsplit(" ", 1)[-1])
        with cluster.client(role="operator") as api:
            for ticket_id in wedged:
                (kept_dir / f"{ticket_id}-history.json").write_text(
                    json.dumps(api.get(f"/ops/instances/{ticket_id}").json()["history"], indent=1))
        pytest.xfail(f"daprd 1.18.1 recorded one step twice and the instance no longer runs: {wedged} "
                     "(docs/benchmarks.md, Runtime problems found)")


def runtime_fault(cluster: Cluster, instance_id: str) -> str | None:
    """What the ops view says the runtime did wrong to an instance (a step recorded twice)."""
    with cluster.client(role="operator") as api:
        return api.get(f"/ops/instances/{instance_id}").json().get("instance", {}).get("runtime_fault")


def describe_instance(cluster: Cluster, instance_id: str) -> str:
    """What the runtime holds of an instance (status and its last history events), for a failure
    message: where a ticket that did not finish stopped."""
    try:
        with cluster.client(role="operator") as api:
            body = api.get(f"/ops/instances/{instance_id}").json()
    except (httpx.HTTPError, ValueError) as error:
        return f"not described: {error!r}"
    instance = body.get("instance", {})
    events = [(e.get("at"), e.get("summary") or e.get("kind")) for e in body.get("history", [])]
    failure = f" failure={instance['failure']!r}" if instance.get("failure") else ""
    return f"{instance.get('runtime_status')} stage={instance.get('stage')}{failure} last events={events[-8:]}"


def stalled_seconds(api: httpx.Client, instance_id: str) -> float:
    """Time an instance spent STALLED: from each executionStalled event of its history to the
    next step that ran (workflowStarted), or to now when none has."""
    events = api.get(f"/ops/instances/{instance_id}").json()["history"]
    total, since = 0.0, None
    for event in events:
        at = datetime.fromisoformat(event["at"]) if event.get("at") else None
        if event["kind"] == "executionStalled" and since is None:
            since = at
        elif event["kind"] == "workflowStarted" and since is not None and at is not None:
            total += (at - since).total_seconds()
            since = None
    if since is not None:
        total += (datetime.now(since.tzinfo) - since).total_seconds()
    return round(total, 2)


def _approve_unless_held(api, ticket_id: str) -> bool:
    """Approves; False when the API says the runtime holds the instance for its version (a 503
    that lasts until a replica with that version returns). Other retryable answers are retried."""
    response = _retrying(lambda: api.post(f"/support/approve/{ticket_id}", json={"approved": True},
                                          headers={"Idempotency-Key": f"roll-{ticket_id}"}), (202,),
                         retry_sidecar_500=True,
                         give_up=lambda r: r.status_code == 503 and "held by the runtime" in r.text)
    return response.status_code == 202


def test_a_rolling_upgrade_under_load_loses_no_ticket_and_stalled_instances_resume(cluster):
    """The replicas are replaced one at a time (app and sidecar, as a pod is) by a build whose
    latest version is the next one, NEXT (the test build tests.support.workflow_next), while
    tickets are filed and decided through HAProxy. Placement keeps a workflow on the replica that started it, so a
    NEXT instance reaches an old replica only when its own replica goes away mid-rollout: that is
    forced here (the upgraded replica's sidecar held down while its NEXT tickets are decided). The
    old build does not know NEXT, so the runtime holds those instances STALLED until a replica
    that does takes them; then they complete."""
    new_build = {"WORKFLOW_VERSIONS_MODULE": "tests.support.workflow_next"}
    ids = [f"ROLL-{i}" for i in range(18)]
    driver = Driver(lambda: run_tickets(cluster, ids, concurrency=4, timeout=300, retry_sidecar_500=True),
                    cluster, ids)
    with cluster.client() as api:
        time.sleep(3)  # tickets in flight on the old build first
        cluster.replace_app(0, new_build)
        # New tickets now start on NEXT where replica 0 hosts them, on the latest release
        # elsewhere. Probes are filed in fours until two wait on NEXT; the others are decided at
        # once (their approval timeout is short).
        probes: list[str] = []
        on_next: list[str] = []

        def approve(ticket_id):
            _retrying(lambda: api.post(f"/support/approve/{ticket_id}", json={"approved": True},
                                       headers={"Idempotency-Key": f"roll-{ticket_id}"}), (202,),
                      retry_sidecar_500=True)

        while len(on_next) < 2 and len(probes) < 32:
            batch = [f"ROLL-S-{len(probes) + i}" for i in range(4)]
            probes.extend(batch)
            ALL_TICKETS.extend(batch)
            for ticket_id in batch:
                # The index run_tickets files it with later (a repeat filing must match).
                _retrying(lambda: api.post("/support/ticket", json=ticket_body(ticket_id, probes.index(ticket_id))),
                          (200, 202))
            poll(lambda: [_stage(api, t) for t in batch], lambda s: all(x == "awaiting_approval" for x in s), 120,
                 interval=0.3, message="the probe tickets did not all wait for a decision")
            for ticket_id in batch:
                if api.get(f"/support/status/{ticket_id}").json()["version"] == NEXT:
                    on_next.append(ticket_id)
                else:
                    approve(ticket_id)
        assert on_next, f"none of {len(probes)} probe tickets started on {NEXT}: replica 0 hosted none"
        # Replica 0 goes away mid-rollout: its workflows move to the old replicas, then decided.
        cluster.hold_down("app-0")
        cluster.hold_down("daprd-0")
        try:
            # A decision reaches a NEXT instance only if it is raised before an old replica picks
            # the instance up and the runtime stalls it; after that the API answers 503 "held by
            # the runtime" until a replica with NEXT is back, and the decision is sent again then.
            held_back = [t for t in on_next if not _approve_unless_held(api, t)]
            stalled_seen = poll(lambda: {r["instance_id"]: r for r in api.get("/ops/instances", params={"status": "stalled"}).json()["instances"]},
                                lambda rows: bool(rows), 60, interval=0.5, message=f"no {NEXT} instance was held STALLED")
            # Probes known to be on NEXT, or the load's own tickets that replica 0 started on it.
            assert set(stalled_seen) <= set(ids + probes), stalled_seen
            assert all(NEXT in (r["stalled_reason"] or "") for r in stalled_seen.values()), stalled_seen
        finally:
            # The rollout goes on (and a failure above leaves no replica down for the next
            # test): replica 0 back, then the others replaced.
            cluster.release("daprd-0")
            cluster.release("app-0")
        cluster.supervised.wait_ready(120)
        for ticket_id in held_back:
            approve(ticket_id)
        for replica in range(1, cluster.replicas):
            cluster.replace_app(replica, new_build)
        result = driver.wait(400)
        result.update(run_tickets(cluster, probes, concurrency=4, timeout=300))
        after = [f"ROLL-NEW-{i}" for i in range(3)]
        result.update(run_tickets(cluster, after, concurrency=3))
        assert {t: (s, [e.get("details") for e in api.get(f"/support/tickets/{t}/timeline").json()["events"]
                        if e["kind"] == "escalated"])
                for t, s in result.items() if s != "completed"} == {}
        tickets = ids + probes + after
        versions = {t: api.get(f"/support/status/{t}").json()["version"] for t in tickets}
        assert {versions[t] for t in after} == {NEXT} and set(versions.values()) <= {TICKET_WORKFLOW_LATEST, NEXT}, versions
        for ticket_id in [t for t in tickets if versions[t] == NEXT]:
            kinds = [e["kind"] for e in api.get(f"/support/tickets/{ticket_id}/timeline").json()["events"]]
            assert "next_step" in kinds and kinds[-1] == "finished", (ticket_id, kinds)
        assert api.get("/ops/instances", params={"status": "stalled"}).json()["instances"] == []
        stalled = {t: stalled_seconds(api, t) for t in tickets}
    assert {t for t, s in stalled.items() if s} >= set(stalled_seen)
    assert_each_mailed_once(cluster, tickets)
    answered_500 = [line[:300] for log in cluster.supervised.log_dir.glob("app-*.log")
                    for line in log.read_text(errors="replace").splitlines() if "sidecar error answered 500" in line]
    print(f"API 500s retried during the rollout: {len(answered_500)} {answered_500[:3]}")
    print(f"rolling upgrade: versions {sorted(Counter(versions.values()).items())}; held STALLED: "
          f"{sorted(stalled_seen)} ({next(iter(stalled_seen.values()))['stalled_reason']!r}); "
          f"decisions answered 503 while held, sent again after the replica returned: {sorted(held_back)}; "
          f"seconds stalled per ticket: {({t: s for t, s in stalled.items() if s})}")


def test_every_ticket_is_still_there_after_a_stop_and_start_of_everything(cluster):
    assert ALL_TICKETS, "the earlier tests filed no ticket"
    with cluster.client() as api:
        before = {t: _stage(api, t) for t in dict.fromkeys(ALL_TICKETS)}
    assert {t: s for t, s in before.items() if s is None} == {}, "tickets filed earlier are not found"
    cluster.stop()
    assert cluster.status() == {} or all(s["state"] != "RUNNING" for s in cluster.status().values())
    cluster.start()
    with cluster.client() as api:
        after = {t: _stage(api, t) for t in dict.fromkeys(ALL_TICKETS)}
        listed, cursor = set(), None
        while True:
            page = api.get("/support/tickets", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
            listed |= {t["ticket_id"] for t in page["tickets"]}
            cursor = page.get("next_cursor")
            if not cursor:
                break
    assert after == before
    assert set(ALL_TICKETS) <= listed
