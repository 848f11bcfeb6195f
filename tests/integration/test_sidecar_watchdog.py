"""The sidecar watchdog (app/core/sidecar_watchdog.py) on real processes under supervisord, the
topology of `make run` (one replica, SQLite): placement, scheduler, daprd, the app, redis and
Mailpit, every one restarted by supervisord when it exits.

The wedge is the runtime's: daprd 1.18.1 handed a workflow's turn to the worker and never got the
answer back (seen in CI under the replicas test's kills), so the workflow's actor held its lock and
every call for that instance ran into its deadline until the sidecar restarted. The test build
tests.support.workflow_wedged makes that happen on demand: the worker holds the first turn of a
WEDGE- ticket and does not answer. The watchdog must see the calls time out, restart the sidecar
through its shutdown API (supervisord starts it again) and the ticket must then go on, to one mail.
A wedged workflow that nobody calls gives the watchdog no call to see, but the worker was handed
the turn: it must see the turn unapplied for SIDECAR_WATCHDOG_AFTER and restart the sidecar
(app/core/held_turns.py). A wedge that no restart heals must reach a person once the workflow has
not changed for STUCK_AFTER.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from app.core.idle_workflow_wake import WAIT_SETTLED_S
from benchmarks.support import ticket_body
from tests.support.harness import Cluster, mailpit_messages, poll, wait_for_stage

BASE_PORT = 18000  # ClusterPorts.from_base(18000, 1): 18010..18926
WATCHDOG_AFTER_S = 20
SIDECAR_COOLDOWN_S = 30  # between two restarts of the sidecar (300 s by default)
SIDECAR_TIMEOUT_S = 5
STUCK_AFTER_S = 60  # past the watchdog's WATCHDOG_AFTER_S, which must act first
HOLD_S = 240  # how long the test build's worker holds the wedged turn: far past the watchdog


@pytest.fixture(scope="module")
def workdir():
    workdir = Path(tempfile.mkdtemp(prefix="support-watchdog-"))
    workdir.chmod(0o711)
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def markers(workdir):
    markers = workdir / "wedge-markers"
    markers.mkdir()
    return markers


@pytest.fixture(scope="module")
def cluster(request, workdir, markers):
    cluster = Cluster(workdir, BASE_PORT, replicas=1, app_env={
        "WORKFLOW_VERSIONS_MODULE": "tests.support.workflow_wedged", "WEDGE_MARKER_DIR": str(markers),
        "WEDGE_HOLD_S": str(HOLD_S), "SIDECAR_TIMEOUT": f"{SIDECAR_TIMEOUT_S}s",
        "SIDECAR_WATCHDOG_AFTER": f"{WATCHDOG_AFTER_S}s", "SIDECAR_WATCHDOG_COOLDOWN": f"{SIDECAR_COOLDOWN_S}s",
        "APPROVAL_TIMEOUT": "1h",
        "STUCK_AFTER": f"{STUCK_AFTER_S}s"})
    try:
        cluster.start()
        yield cluster
    finally:
        if request.session.testsfailed:
            print(cluster.keep_logs())
        cluster.stop()


def _sidecar_exits(cluster: Cluster) -> list[datetime]:
    """When supervisord saw daprd-0 exit, by its own log."""
    exits = []
    for line in cluster.supervised.supervisor_log.read_text().splitlines():
        if "exited: daprd-0" in line:
            exits.append(datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
    return exits


def _state_unless_restarting(cluster: Cluster, key: str):
    """A record of the records store, read through the sidecar; None while the watchdog restarts it."""
    try:
        return cluster.state("analysis-state", key)
    except httpx.TransportError:
        return None


def _file_armed(api, markers: Path, ticket_id: str, n: int, arm: str, acted: str) -> datetime:
    """Files the ticket with the test build armed as `arm` says; when the build acted (its marker
    renamed to `acted`)."""
    (markers / f"{ticket_id}.arm").write_text(arm)
    assert api.post("/support/ticket", json=ticket_body(ticket_id, n)).status_code == 202
    poll(lambda: (markers / f"{ticket_id}.{acted}").exists(), bool, 60,
         message=f"the test build did not act on {ticket_id}")
    return datetime.now()


def _app_log_lines(cluster: Cluster, *words: str) -> list[str]:
    app_log = (cluster.supervised.log_dir / "app-0.log").read_text()
    return [line for line in app_log.splitlines() if all(word in line for word in words)]


def _mails_to(cluster: Cluster, ticket_id: str) -> int:
    """Mails about the ticket in Mailpit, once at least one arrived."""
    subjects = poll(lambda: [m["Subject"] for m in mailpit_messages(cluster)],
                    lambda s: any(f"Ticket {ticket_id}:" in x for x in s), 60, message=f"{ticket_id} was never mailed")
    return sum(f"Ticket {ticket_id}:" in x for x in subjects)


def test_a_workflow_the_runtime_wedged_goes_on_once_the_watchdog_restarts_its_sidecar(cluster, markers):
    with cluster.client(timeout=30) as api:
        for n, ticket_id in enumerate(("WEDGE-1", "CALM-1")):
            assert api.post("/support/ticket", json=ticket_body(ticket_id, n)).status_code == 202
        for ticket_id in ("WEDGE-1", "CALM-1"):
            wait_for_stage(api, ticket_id, "awaiting_approval", timeout=60)

        # The wedge: WEDGE-1's next turn is handed to the worker and never answered. The
        # engineer's decision is sent until the workflow says it applied it (one Idempotency-Key,
        # as a client that did not see "accepted" does); meanwhile each raise runs into the
        # sidecar's deadline and the API answers 503 to retry.
        (markers / "WEDGE-1.arm").touch()
        armed_at, answers = datetime.now(), []
        while True:
            response = api.post("/support/approve/WEDGE-1", json={"approved": True},
                                headers={"Idempotency-Key": "watchdog-test"})
            answers.append((round((datetime.now() - armed_at).total_seconds(), 1), response.status_code,
                            response.json().get("status") or response.json().get("detail")))
            if response.status_code == 202 and response.json()["status"] == "accepted":
                break
            assert response.status_code in (202, 503), response.text
            assert (datetime.now() - armed_at).total_seconds() < 100, f"never accepted: {answers}"
            time.sleep(1)
        assert (markers / "WEDGE-1.wedged").exists(), "the test build did not hold a turn"
        assert any(code == 503 and "sidecar" in detail for _, code, detail in answers), \
            f"no call ran into the sidecar's deadline: {answers}"

        # Going on is the watchdog's doing: the sidecar exited through its shutdown API (status
        # 0) once the calls had timed out for WATCHDOG_AFTER_S, long before the test build let go.
        exits = _sidecar_exits(cluster)
        assert len(exits) == 1, exits
        waited = (exits[0] - armed_at.replace(microsecond=0)).total_seconds()
        assert WATCHDOG_AFTER_S - 1 <= waited < HOLD_S / 2, (waited, answers)
        assert any("exited: daprd-0 (exit status 0" in line
                   for line in cluster.supervised.supervisor_log.read_text().splitlines())
        app_log = (cluster.supervised.log_dir / "app-0.log").read_text()
        restarted = [line for line in app_log.splitlines() if "restarting it" in line]
        assert restarted and re.search(r'"instances": \[[^]]*"WEDGE-1"', restarted[0]), restarted

        # Both tickets complete, each mailed once; the control ticket lost nothing.
        assert api.post("/support/approve/CALM-1", json={"approved": True}).status_code == 202
        for ticket_id in ("WEDGE-1", "CALM-1"):
            wait_for_stage(api, ticket_id, "completed", timeout=90)
        subjects = poll(lambda: [m["Subject"] for m in mailpit_messages(cluster)],
                        lambda s: all(any(f"Ticket {t}:" in x for x in s) for t in ("WEDGE-1", "CALM-1")), 60,
                        message="a ticket was never mailed")
        assert {t: sum(f"Ticket {t}:" in s for s in subjects) for t in ("WEDGE-1", "CALM-1")} == \
            {"WEDGE-1": 1, "CALM-1": 1}


def test_a_wedged_workflow_nobody_calls_goes_on_once_the_worker_sees_its_turn_held(cluster, markers):
    # Its second turn is held before any decision is asked for; nothing calls through its actor
    # (status reads go to the store): the worker, which was handed the turn, must notice.
    exits_before = len(_sidecar_exits(cluster))
    with cluster.client(timeout=30) as api:
        held_at = _file_armed(api, markers, "HELD-1", 3, arm="1", acted="wedged")
        row = wait_for_stage(api, "HELD-1", "awaiting_approval", timeout=WATCHDOG_AFTER_S + SIDECAR_COOLDOWN_S + 60)
        went_on = (datetime.now() - held_at).total_seconds()
        assert WATCHDOG_AFTER_S - 1 <= went_on < HOLD_S / 2, (went_on, row)
    assert len(_sidecar_exits(cluster)) == exits_before + 1
    held = _app_log_lines(cluster, "has not applied a workflow turn", "HELD-1")
    assert held and "restarting it" in held[0], held
    # Gone on before STUCK_AFTER: nobody was told it was stuck.
    assert cluster.state("analysis-state", "inbox:ticket-escalations:HELD-1") is None


def test_a_turn_saved_with_its_answer_lost_is_woken_and_goes_on_without_a_restart(cluster, markers):
    # LOST-1's turn after its first is saved with no command: nothing is outstanding and no turn
    # is held, so no restart can help; the sweep must replay it, see the lost answer and wake it.
    exits_before = len(_sidecar_exits(cluster))
    with cluster.client(timeout=30) as api:
        lost_at = _file_armed(api, markers, "LOST-1", 4, arm="1 lose", acted="lost")
        wait_for_stage(api, "LOST-1", "awaiting_approval", timeout=WATCHDOG_AFTER_S + 60)
        went_on = (datetime.now() - lost_at).total_seconds()
        assert WATCHDOG_AFTER_S - 1 <= went_on < STUCK_AFTER_S, went_on
        assert api.post("/support/approve/LOST-1", json={"approved": True}).status_code == 202
        wait_for_stage(api, "LOST-1", "completed", timeout=60)
    with cluster.client(timeout=30, role="operator") as ops:
        history = ops.get("/ops/instances/LOST-1").json()["history"]
    assert [e["name"] for e in history if e["kind"] == "eventRaised"].count("runtime_wake") == 1, history
    assert len(_sidecar_exits(cluster)) == exits_before  # woken, not restarted
    woken = _app_log_lines(cluster, "lost its answer", "LOST-1")
    assert len(woken) == 1 and '"activity search_knowledge_base"' in woken[0], woken
    assert cluster.state("analysis-state", "inbox:ticket-escalations:LOST-1") is None
    assert _mails_to(cluster, "LOST-1") == 1


def test_a_decision_whose_turn_answer_was_lost_is_woken_and_the_ticket_completes(cluster, markers):
    # The decision's turn is saved (the event is in the history) and its answer lost: the ticket
    # still shows it waiting, so the sweep must read it because it changed while it waited.
    with cluster.client(timeout=30) as api:
        assert api.post("/support/ticket", json=ticket_body("LOST-2", 5)).status_code == 202
        wait_for_stage(api, "LOST-2", "awaiting_approval", timeout=60)
        # As an engineer decides: not within WAIT_SETTLED_S of the wait's start (a decision's turn
        # lost that early is left to the approval timer: app/core/idle_workflow_wake.py).
        poll(lambda: api.get("/support/status/LOST-2").json(),
             lambda s: (s.get("waiting_seconds") or 0) > WAIT_SETTLED_S + 1, 30)
        (markers / "LOST-2.arm").write_text("lose")
        decided = api.post("/support/approve/LOST-2", json={"approved": True})
        # No answer from the workflow within DECISION_ACK_TIMEOUT: delivered, not yet accepted.
        assert decided.status_code == 202 and decided.json()["status"] == "delivered", decided.text
        assert (markers / "LOST-2.lost").exists(), "the test build lost no answer"
        assert api.get("/support/status/LOST-2").json()["stage"] == "awaiting_approval"
        done = wait_for_stage(api, "LOST-2", "completed", timeout=WATCHDOG_AFTER_S + 60)
        assert done["decision"]["approved"] is True
    woken = _app_log_lines(cluster, "lost its answer", "LOST-2")
    assert len(woken) == 1 and '"activity notify_customer"' in woken[0], woken
    assert _mails_to(cluster, "LOST-2") == 1


def test_a_wedge_no_restart_heals_reaches_a_person_after_stuck_after(cluster, markers):
    # Every turn of STUCK-1 after its first is held, handed out again or not: the worker's
    # restarts (at most two for one workflow) cannot free it, so the sweep must hand it to a person.
    (markers / "STUCK-1.arm").write_text("1 always")
    with cluster.client(timeout=30) as api:
        assert api.post("/support/ticket", json=ticket_body("STUCK-1", 2)).status_code == 202
        row = poll(lambda: api.get("/support/status/STUCK-1"), lambda r: r.status_code == 200, 30,
                   message="STUCK-1 has no status").json()
        assert row["stage"] in ("triage", "expert_analysis"), row
    inbox = poll(lambda: _state_unless_restarting(cluster, "inbox:ticket-escalations:STUCK-1"),
                 lambda v: v is not None, STUCK_AFTER_S + 90, message="the stuck ticket was not escalated")
    [message] = inbox["messages"]
    assert message["data"]["reason"] == "workflow_stuck" and message["data"]["customer_id"], message
    assert "no change in the ticket's workflow" in message["data"]["detail"]
    assert (markers / "STUCK-1.wedged").exists(), "the test build did not hold a turn"
    with cluster.client() as api:
        assert api.get("/support/status/STUCK-1").json()["stage"] in ("triage", "expert_analysis")
