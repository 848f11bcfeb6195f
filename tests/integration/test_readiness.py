"""Readiness, liveness and deadlines on real processes (issue 12).

- /health/ready answers 200 only when every dependency is there, /health/live whenever the
  process serves;
- steps held by slow calls (more than the SDK's default thread pool) hold no other ticket;
- the app SIGKILLed during a new ticket's first step comes back to a sidecar that still hosts the
  workflow actors (the daprd 1.18.1 deadlock workaround: the knowledge-base MCPServer resource
  keeps them registered), and the ticket completes;
- with the scheduler gone, readiness says so and filing answers 503 with Retry-After within its
  deadline (SIDECAR_TIMEOUT) instead of hanging; once the scheduler is back the same filing is
  accepted and the ticket completes;
- a hung sidecar (SIGSTOP) gets filing and status answered 503 with Retry-After within the
  deadline, and the same filing is accepted once it resumes;
- a sidecar without the MCPServer resource (the workaround missing) is never ready.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from scripts.devstack import read_pid, stop_process
from tests.support.harness import poll, status_of, wait_for_stage

SIDECAR_TIMEOUT_S = 3
# The first step of a ticket whose id starts with FIRST- hangs until the app is killed.
FIRST_STEP_HANG = "triage_ticket@FIRST-:hang"


@pytest.fixture(scope="module")
def service(service_factory):
    return service_factory("readiness", 19000, app_env={"SIDECAR_TIMEOUT": f"{SIDECAR_TIMEOUT_S}s",
                                                        "APPROVAL_TIMEOUT": "1h",
                                                        "FAULT_INJECTION": FIRST_STEP_HANG})


def ready(service):
    with service.client(role=None) as api:
        return api.get("/health/ready")


def file_ticket(api, ticket_id: str):
    return api.post("/support/ticket", json={"ticket_id": ticket_id, "customer_id": "CUST001",
                                             "description": "Pub/sub messages are delivered twice to our subscriber"})


def approve_and_complete(api, ticket_id: str) -> dict:
    wait_for_stage(api, ticket_id, "awaiting_approval", timeout=90)
    decided = api.post(f"/support/approve/{ticket_id}", json={"approved": True})
    assert decided.status_code == 202, decided.text
    return wait_for_stage(api, ticket_id, "completed", timeout=90)


def assert_refused_in_time(answer, elapsed: float) -> None:
    """503 with Retry-After, within the deadline (and a little time to answer)."""
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    assert elapsed < SIDECAR_TIMEOUT_S + 5, f"{answer.request.url} took {elapsed:.1f}s"


def refile_and_complete(service, ticket_id: str, after: str) -> None:
    """Once ready again, the client sends the same filing again, as Retry-After told it: it is
    accepted (or found started) once, and the ticket completes."""
    poll(lambda: ready(service).status_code, lambda code: code == 200, 60, message=f"not ready again after {after}")
    with service.client() as api:
        again = poll(lambda: file_ticket(api, ticket_id), lambda r: r.status_code in (200, 202), 60,
                     message=f"the filing was not accepted after {after}")
        assert again.json()["ticket_id"] == ticket_id
        assert approve_and_complete(api, ticket_id)["stage"] == "completed"


def test_ready_and_live_when_every_dependency_is_up(service):
    for _ in range(3):
        answer = ready(service)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "ready"}
    # The scheduler probe reads a job it created once: a missing job would be an error line in
    # daprd's log at every probe (a load balancer probes every second).
    errors = [line for line in (service.stack.log_dir / "daprd.log").read_text(errors="replace").splitlines()
              if "readiness-probe" in line and '"level":"error"' in line.replace(" ", "")]
    assert len(errors) <= 1, errors
    with service.client(role=None) as api:
        assert api.get("/health/live").json() == {"status": "ok"}


def test_steps_held_by_slow_calls_do_not_hold_other_tickets(service):
    # Eight first steps hang (more than the SDK's default pool of cores + 4 threads), as slow
    # model calls or mail sends would; a ticket filed after them still runs every step.
    held = [f"FIRST-HOLD-{i}" for i in range(8)]
    with service.client() as api:
        for ticket_id in held:
            filed = file_ticket(api, ticket_id)
            assert filed.status_code == 202, filed.text
    with service.client(role="operator") as ops:
        for ticket_id in held:
            poll(lambda t=ticket_id: ops.get(f"/ops/instances/{t}").json().get("history", []),
                 lambda events: any(e["kind"] == "taskScheduled" for e in events), 30,
                 message="a held first step was never scheduled")
    with service.client() as api:
        filed = file_ticket(api, "FREE-1")
        assert filed.status_code == 202, filed.text
        wait_for_stage(api, "FREE-1", "awaiting_approval", timeout=60)
        assert {status_of(api, t)["stage"] for t in held} == {"triage"}


def test_the_app_killed_during_a_first_step_comes_back_to_registered_workflows(service):
    with service.client() as api:
        assert file_ticket(api, "FIRST-1").status_code == 202
    with service.client(role="operator") as ops:
        # The triage step was handed to the worker (it hangs there: FAULT_INJECTION).
        poll(lambda: ops.get("/ops/instances/FIRST-1").json().get("history", []),
             lambda events: any(e["kind"] == "taskScheduled" and e.get("name") == "triage_ticket" for e in events),
             30, message="the first step was never scheduled")
        assert status_of(ops, "FIRST-1")["stage"] == "triage"
    service.kill("app")
    service.app_env.pop("FAULT_INJECTION")
    service.start_app()
    # The sidecar hosts the workflow and activity actors again: registration survived the crash.
    types = poll(service.workflow_actor_types, lambda t: len(t) >= 2, 30,
                 message="the workflow actors were not registered again after the app crash")
    assert any(t.endswith(".workflow") for t in types) and any(t.endswith(".activity") for t in types)
    assert poll(lambda: ready(service).status_code, lambda code: code == 200, 30) == 200
    with service.client() as api:
        final = approve_and_complete(api, "FIRST-1")
    assert final["stage"] == "completed"


def test_without_the_scheduler_readiness_fails_and_filing_answers_503_in_time(service):
    stop_process("scheduler", service.stack.run_dir)
    try:
        not_ready = poll(lambda: ready(service), lambda r: r.status_code == 503, 30,
                         message="/health/ready stayed 200 with the scheduler gone")
        assert "scheduler" in not_ready.json()["problems"], not_ready.text
        assert int(not_ready.headers["Retry-After"]) >= 1
        with service.client(role=None) as api:
            assert api.get("/health/live").status_code == 200
        with service.client() as api:
            began = time.monotonic()
            filed = file_ticket(api, "NOSCHED-1")
            elapsed = time.monotonic() - began
        assert_refused_in_time(filed, elapsed)
    finally:
        service.stack.start_one("scheduler")
    refile_and_complete(service, "NOSCHED-1", "the scheduler came back")


def test_a_hung_sidecar_answers_503_in_time_and_nothing_is_lost(service):
    # SIGSTOP: daprd keeps its sockets open and answers nothing, as a sidecar stuck on a store
    # would. Every call the app makes has a deadline (SIDECAR_TIMEOUT).
    daprd = read_pid("daprd", service.stack.run_dir)
    os.kill(daprd, signal.SIGSTOP)
    try:
        with service.client() as api:
            for request in (lambda: file_ticket(api, "HUNG-1"), lambda: api.get("/support/status/FREE-1")):
                began = time.monotonic()
                answer = request()
                elapsed = time.monotonic() - began
                assert_refused_in_time(answer, elapsed)
    finally:
        os.kill(daprd, signal.SIGCONT)
    refile_and_complete(service, "HUNG-1", "the sidecar resumed")


def test_a_sidecar_without_the_knowledge_base_mcp_server_is_not_ready(service):
    # The workaround missing: daprd would unregister the workflow actors on an app crash.
    (service.resources / "knowledge-base-mcp.yaml").rename(service.workdir / "knowledge-base-mcp.yaml")
    try:
        stop_process("daprd", service.stack.run_dir)
        service.start_sidecar()
        answer = poll(lambda: ready(service), lambda r: r.status_code == 503 and "mcp" in r.json()["problems"],
                      60, message="ready without the knowledge-base MCPServer")
        assert "knowledge-base" in answer.json()["problems"]["mcp"]
    finally:
        (service.workdir / "knowledge-base-mcp.yaml").rename(service.resources / "knowledge-base-mcp.yaml")
        stop_process("daprd", service.stack.run_dir)
        service.start_sidecar()
    assert poll(lambda: ready(service).status_code, lambda code: code == 200, 60) == 200

