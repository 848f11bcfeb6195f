"""The API tier: the real routes, schemas, validation and error mapping, with the service's own
ports (workflow gateway, state stores, read model) swapped through dependency_overrides."""

from __future__ import annotations

import sqlite3
import threading
import time

import grpc
import pytest
from fastapi.testclient import TestClient

from app.api import deps
from app.api.auth import current_principal
from app.core.config import Settings, get_settings
from app.core.security import Principal
from app.main import create_app
from app.readmodel.store import ReadModel
from app.services.admission import AdmissionGate
from app.services.workflow_gateway import Instance, InstanceStalled
from app.workflows.contracts import WAKE_EVENT, ProgressRecord, TicketProgress, TimelineEvent
from tests.api.fakes import FakeStore, FakeWorkflows, waiting
from tests.unit.grpc_errors import RpcFailure

ENGINEER = Principal(name="eng-1", role="engineer")
CLIENT = Principal(name="tester", role="client")


@pytest.fixture
def world(tmp_path):
    app = create_app()  # no lifespan: nothing here reaches a sidecar
    workflows, records = FakeWorkflows(), FakeStore()
    customers = FakeStore({"CUST001": {"customer_id": "CUST001", "name": "Acme", "plan": "enterprise"}})
    read_model = ReadModel(f"sqlite:///{tmp_path}/rm.db")
    principal = {"value": ENGINEER}
    admission = AdmissionGate(2, read_model, refresh_interval=0)
    decision_admission = AdmissionGate(1, read_model, refresh_interval=0, working_on="notification after a decision")
    app.dependency_overrides.update({
        deps.get_admission: lambda: admission, deps.get_decision_admission: lambda: decision_admission,
        deps.get_workflows: lambda: workflows, deps.get_records: lambda: records,
        deps.get_customers: lambda: customers, deps.get_ready_read_model: lambda: read_model,
        deps.get_read_model: lambda: read_model,
        get_settings: lambda: Settings(decision_ack_timeout=0.2, approval_timeout=3600),
        current_principal: lambda: principal["value"],
    })
    # Not entered as a context manager: the lifespan (sidecar, worker) does not run.
    yield TestClient(app), workflows, records, read_model, principal
    read_model.close()


def test_filing_beyond_the_admission_bound_answers_503_with_retry_after_and_starts_nothing(world):
    client, workflows, _, read_model, _ = world
    body = {"customer_id": "CUST001", "description": "sidecar cannot reach the app"}
    for ticket_id in ("T-1", "T-2"):
        assert client.post("/support/ticket", json={**body, "ticket_id": ticket_id}).status_code == 202
    shed = client.post("/support/ticket", json={**body, "ticket_id": "T-3"})
    assert shed.status_code == 503 and int(shed.headers["Retry-After"]) >= 1
    assert "at capacity" in shed.json()["detail"]
    assert [started[1] for started in workflows.started] == ["T-1", "T-2"]
    # The workflow records T-1 waiting for its decision: its place frees.
    read_model.apply(ProgressRecord(ticket_id="T-1", seq=1, progress=TicketProgress(
        customer_id="CUST001", stage="awaiting_approval", awaiting_decision=True)))
    # A filing that starts nothing (unknown customer) takes no place.
    assert client.post("/support/ticket", json={**body, "ticket_id": "T-9", "customer_id": "NOPE"}).status_code == 404
    assert client.post("/support/ticket", json={**body, "ticket_id": "T-3"}).status_code == 202
    assert [started[1] for started in workflows.started] == ["T-1", "T-2", "T-3"]


def test_filing_starts_the_named_workflow_and_writes_nothing_else(world):
    client, workflows, records, read_model, _ = world
    response = client.post("/support/ticket", json={"ticket_id": "T-1", "customer_id": "CUST001",
                                                    "description": "sidecar cannot reach the app"})
    assert response.status_code == 202, response.text
    [(name, instance_id, started)] = workflows.started
    assert (name, instance_id) == ("ticket_workflow", "T-1")
    assert started["filed_by"] == "eng-1" and started["approval_timeout_seconds"] == 3600
    assert records.values == {} and read_model.count() == 0  # the workflow records its own progress
    again = client.post("/support/ticket", json={"ticket_id": "T-1", "customer_id": "CUST001",
                                                 "description": "sidecar cannot reach the app"})
    assert again.status_code == 200
    other = client.post("/support/ticket", json={"ticket_id": "T-1", "customer_id": "CUST001",
                                                 "description": "something else"})
    assert other.status_code == 409 and "different content" in other.json()["detail"]


def test_a_filing_that_finds_an_instance_without_its_start_answers_503_not_a_conflict(world):
    client, workflows, *_ = world
    # What the runtime answered under replica kills: an instance it cannot describe yet.
    workflows.instances["T-5"] = Instance(instance_id="T-5", name="", runtime_status="pending")
    response = client.post("/support/ticket", json={"ticket_id": "T-5", "customer_id": "CUST001",
                                                    "description": "sidecar cannot reach the app"})
    assert response.status_code == 503 and "retry" in response.json()["detail"]
    assert int(response.headers["Retry-After"]) >= 1
    assert workflows.started == []
    # The start may be left in the instance's inbox with nothing to run it: an event raised
    # into it brings a turn that does (no workflow waits for the event).
    assert workflows.raised == [("T-5", WAKE_EVENT, {"reason": "filed again before its start ran"})]


def test_unknown_customer_is_404(world):
    client, *_ = world
    response = client.post("/support/ticket", json={"ticket_id": "T-2", "customer_id": "NOPE", "description": "x"})
    assert response.status_code == 404 and "unknown customer_id" in response.json()["detail"]


def test_a_decision_is_answered_with_the_workflows_acceptance(world):
    client, workflows, records, *_ = world
    workflows.instances["T-3"] = waiting("T-3")

    def workflow_applies(instance, event, data):
        instance.custom_status.update(stage="notifying", acks=[
            {"decision_id": data["decision_id"], "revision": data["revision"], "outcome": "applied"}])

    workflows.on_event = workflow_applies
    response = client.post("/support/approve/T-3", json={"approved": True})
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "ticket_id": "T-3", "instance_id": "T-3",
                               "revision": 0, "stage": "notifying"}
    [(_, event, data)] = workflows.raised
    assert event == "solution_approved" and data["approver"] == "eng-1" and data["revision"] == 0
    assert records.values["decision:T-3:0"]["decision_id"] == data["decision_id"]


def test_an_accepted_decision_answers_the_stage_it_led_to_not_a_later_one(world):
    client, workflows, *_ = world
    workflows.instances["T-4"] = waiting("T-4")

    def workflow_applies_and_revises_fast(instance, event, data):
        # The rejection's re-analysis already waits again by the time the API reads the ack.
        instance.custom_status.update(stage="awaiting_approval", revision=1, acks=[
            {"decision_id": data["decision_id"], "revision": data["revision"], "outcome": "applied",
             "stage": "expert_analysis"}])

    workflows.on_event = workflow_applies_and_revises_fast
    response = client.post("/support/approve/T-4", json={"approved": False, "support_notes": "check mTLS"})
    assert response.status_code == 202, response.text
    assert response.json()["stage"] == "expert_analysis" and response.json()["revision"] == 0


def test_decisions_beyond_the_admission_bound_answer_503_and_record_nothing(world):
    client, workflows, records, read_model, _ = world

    def workflow_applies(instance, event, data):
        instance.custom_status.update(stage="notifying", acks=[
            {"decision_id": data["decision_id"], "revision": data["revision"], "outcome": "applied"}])

    workflows.on_event = workflow_applies
    for ticket_id in ("T-20", "T-21"):
        workflows.instances[ticket_id] = waiting(ticket_id)
    assert client.post("/support/approve/T-20", json={"approved": True}).status_code == 202
    shed = client.post("/support/approve/T-21", json={"approved": True})
    assert shed.status_code == 503 and int(shed.headers["Retry-After"]) >= 1
    assert "notification after a decision" in shed.json()["detail"]
    assert [raised[0] for raised in workflows.raised] == ["T-20"] and "decision:T-21:0" not in records.values
    # The workflow records T-20 finished: its place frees.
    read_model.apply(ProgressRecord(ticket_id="T-20", seq=1, progress=TicketProgress(
        customer_id="CUST001", stage="completed")))
    assert client.post("/support/approve/T-21", json={"approved": True}).status_code == 202


def test_a_decision_waits_for_the_workflows_answer_on_the_read_model_not_by_polling_the_workflow(world):
    client, workflows, _, read_model, _ = world
    client.app.dependency_overrides[get_settings] = lambda: Settings(decision_ack_timeout=5, approval_timeout=3600)
    workflows.instances["T-33"] = waiting("T-33")

    def workflow_applies_later(instance, event, data):
        # The workflow's turn answers the decision, then the next step records it.
        def turn():
            instance.custom_status.update(stage="notifying", acks=[
                {"decision_id": data["decision_id"], "revision": 0, "outcome": "applied"}])
            read_model.apply(ProgressRecord(ticket_id="T-33", seq=6, progress=TicketProgress(
                customer_id="CUST001", stage="notifying")))
        threading.Timer(0.4, turn).start()

    workflows.on_event = workflow_applies_later
    reads = []
    read_workflow = workflows.get
    workflows.get = lambda *args, **kwargs: reads.append(args) or read_workflow(*args, **kwargs)
    began = time.monotonic()
    response = client.post("/support/approve/T-33", json={"approved": True})
    elapsed = time.monotonic() - began
    assert response.status_code == 202 and response.json()["status"] == "accepted", response.text
    assert 0.4 <= elapsed < 1.0, elapsed  # as soon as the workflow recorded it
    # Read to validate the decision, before raising it, at the first re-read (0.25 s) and once the
    # read model moved: not every 10-100 ms in between.
    assert len(reads) <= 4, reads


def test_a_decision_is_answered_from_the_workflow_while_the_read_model_cannot_be_read(world):
    # The read model's database restarting (PostgreSQL in the replicas profile) must not turn an
    # accepted decision into a 500: its marker only hastens the next read of the workflow.
    client, workflows, _, read_model, _ = world
    client.app.dependency_overrides[get_settings] = lambda: Settings(decision_ack_timeout=5, approval_timeout=3600)
    workflows.instances["T-34"] = waiting("T-34")

    def database_down(ticket_id=None):
        raise sqlite3.OperationalError("unable to open database file")

    read_model.change_markers = database_down

    def workflow_applies_later(instance, event, data):
        threading.Timer(0.1, lambda: instance.custom_status.update(stage="notifying", acks=[
            {"decision_id": data["decision_id"], "revision": 0, "outcome": "applied"}])).start()

    workflows.on_event = workflow_applies_later
    response = client.post("/support/approve/T-34", json={"approved": True})
    assert response.status_code == 202 and response.json()["status"] == "accepted", response.text


def test_a_refused_decision_is_409_with_the_workflows_reason(world):
    client, workflows, *_ = world
    workflows.instances["T-4"] = waiting("T-4")

    def workflow_refuses(instance, event, data):
        instance.custom_status.update(stage="escalating", acks=[
            {"decision_id": data["decision_id"], "revision": 0, "outcome": "refused",
             "reason": "the approval timed out first"}])

    workflows.on_event = workflow_refuses
    response = client.post("/support/approve/T-4", json={"approved": True})
    assert response.status_code == 409 and "timed out" in response.json()["detail"]


def test_a_decision_for_another_revision_is_409_before_anything_is_raised(world):
    client, workflows, *_ = world
    workflows.instances["T-5"] = waiting("T-5", revision=1)
    response = client.post("/support/approve/T-5", json={"approved": True, "revision": 0})
    assert response.status_code == 409 and "revision 1 is waiting" in response.json()["detail"]
    assert workflows.raised == []


def test_an_unacknowledged_decision_is_delivered_not_accepted(world):
    client, workflows, *_ = world
    workflows.instances["T-6"] = waiting("T-6")
    response = client.post("/support/approve/T-6", json={"approved": False, "support_notes": "try again"})
    assert response.status_code == 202 and response.json()["status"] == "delivered"


@pytest.mark.parametrize("body", [{"approved": 0}, {"approved": "yes"}, {"approved": False, "final_solution": "x"},
                                  {"approved": True, "extra": 1}, {"approved": True, "revision": -1}])
def test_decisions_are_strictly_typed(world, body):
    client, workflows, *_ = world
    workflows.instances["T-7"] = waiting("T-7")
    assert client.post("/support/approve/T-7", json=body).status_code == 422
    assert workflows.raised == []


def test_cancel_is_refused_while_the_final_message_is_sent(world):
    client, workflows, *_ = world
    workflows.instances["T-8"] = waiting("T-8")
    workflows.instances["T-8"].custom_status["stage"] = "notifying"
    response = client.post("/support/tickets/T-8/cancel", json={"reason": "dup"})
    assert response.status_code == 409 and "final message" in response.json()["detail"]


def test_a_client_reads_only_its_own_tickets(world):
    client, workflows, _, _, principal = world
    workflows.instances["T-9"] = waiting("T-9", filed_by="someone-else")
    principal["value"] = CLIENT
    assert client.get("/support/status/T-9").status_code == 404
    workflows.instances["T-10"] = waiting("T-10", filed_by="tester")
    assert client.get("/support/status/T-10").json()["stage"] == "awaiting_approval"


def test_the_status_carries_a_weak_etag_and_answers_304_when_it_is_unchanged(world):
    client, workflows, *_ = world
    workflows.instances["T-30"] = waiting("T-30")
    first = client.get("/support/status/T-30")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('W/"')
    # The clock moves waiting_seconds; the ETag stays.
    again = client.get("/support/status/T-30", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and again.content == b""
    workflows.instances["T-30"].custom_status["stage"] = "notifying"
    moved = client.get("/support/status/T-30", headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.json()["stage"] == "notifying" and moved.headers["ETag"] != etag


def test_a_status_request_with_wait_answers_when_the_workflow_records_a_change(world):
    client, workflows, _, read_model, _ = world
    workflows.instances["T-31"] = waiting("T-31")
    etag = client.get("/support/status/T-31").headers["ETag"]

    def workflow_moves_on():
        workflows.instances["T-31"].custom_status.update(stage="notifying")
        read_model.apply(ProgressRecord(ticket_id="T-31", seq=5, progress=TicketProgress(
            customer_id="CUST001", stage="notifying")))

    reads = []
    read_workflow = workflows.get
    workflows.get = lambda *args, **kwargs: reads.append(args) or read_workflow(*args, **kwargs)
    timer = threading.Timer(0.5, workflow_moves_on)
    began = time.monotonic()
    timer.start()
    answer = client.get("/support/status/T-31", params={"wait": 20}, headers={"If-None-Match": etag})
    elapsed = time.monotonic() - began
    timer.join()
    assert answer.status_code == 200 and answer.json()["stage"] == "notifying"
    assert 0.5 <= elapsed < 2.0, elapsed  # soon after the change, not at the end of the wait
    # The workflow is read when the request arrives and when the read model moves, not polled.
    assert len(reads) <= 2, reads


def test_a_status_request_with_wait_and_no_change_answers_304_after_the_wait(world):
    client, workflows, *_ = world
    workflows.instances["T-32"] = waiting("T-32")
    etag = client.get("/support/status/T-32").headers["ETag"]
    began = time.monotonic()
    answer = client.get("/support/status/T-32", params={"wait": 0.6}, headers={"If-None-Match": etag})
    assert answer.status_code == 304 and time.monotonic() - began >= 0.6
    assert client.get("/support/status/T-32", params={"wait": 61}).status_code == 422


def test_list_and_timeline_read_the_read_model_corrected_by_its_sweep(world):
    from app.readmodel.sync import PurgeCheck, ReadModelSync

    client, workflows, _, read_model, _ = world
    for n, ticket_id in enumerate(["L-1", "L-2", "L-3"]):
        workflows.instances[ticket_id] = waiting(ticket_id)
        read_model.apply(ProgressRecord(ticket_id=ticket_id, seq=1, progress=TicketProgress(
            customer_id="CUST001", filed_at=f"2026-11-23T12:00:0{n}+00:00", stage="awaiting_approval",
            awaiting_decision=True, priority="high"), events=[TimelineEvent(
                key="filed", kind="filed", actor="tester", at=f"2026-11-23T12:00:0{n}+00:00")]))
    workflows.instances["L-2"].runtime_status = "terminated"  # by an operator, around the workflow
    del workflows.instances["L-1"]  # purged
    # A page answers from the read model alone: reading it changes nothing.
    for _ in range(2):
        first = client.get("/support/tickets", params={"limit": 2}).json()
        assert [(t["ticket_id"], t["status"]) for t in first["tickets"]] == [("L-3", "running"), ("L-2", "running")]
    # The sweep's turn corrects it: L-2 terminated (shown cancelled), L-1 (purged) gone.
    ReadModelSync(workflows, read_model, min_age=0, purge_check=PurgeCheck()).turn()
    page = client.get("/support/tickets", params={"limit": 2}).json()
    assert [(t["ticket_id"], t["status"], t["stage"]) for t in page["tickets"]] == [
        ("L-3", "running", "awaiting_approval"), ("L-2", "terminated", "cancelled")]
    assert page["next_cursor"] is None
    assert [t["ticket_id"] for t in client.get("/support/tickets", params={"status": "terminated"}).json()["tickets"]] == ["L-2"]
    timeline = client.get("/support/tickets/L-2/timeline").json()["events"]
    assert [e["kind"] for e in timeline] == ["filed", "terminated"]
    assert client.get("/support/tickets", params={"cursor": "garbage!"}).status_code == 422


def test_the_system_view_shows_what_the_purge_check_costs(world):
    from app.readmodel.sync import PurgeCheck, ReadModelSync

    client, workflows, _, read_model, _ = world
    # No sidecar, placement or scheduler in this tier: the view reports them unreachable.
    for ticket_id in ("P-1", "P-2"):
        workflows.instances[ticket_id] = waiting(ticket_id)
    sync = ReadModelSync(workflows, read_model, min_age=0, purge_check=PurgeCheck())
    assert client.get("/ops/system").json()["read_model"]["purge_check"] == {"passes": "none yet"}
    sync.turn()
    shown = client.get("/ops/system").json()["read_model"]["purge_check"]
    assert shown["instances_listed"] == 2 and shown["seconds_between_passes"] == 0.5
    assert shown["last_pass_s"] >= 0


def test_a_stale_record_never_moves_a_ticket_back(tmp_path):
    read_model = ReadModel(f"sqlite:///{tmp_path}/rm.db")
    newer = ProgressRecord(ticket_id="S-1", seq=5, progress=TicketProgress(stage="notifying"))
    older = ProgressRecord(ticket_id="S-1", seq=4, progress=TicketProgress(stage="awaiting_approval",
                                                                            awaiting_decision=True))
    assert read_model.apply(newer) and not read_model.apply(older)
    assert read_model.get("S-1")["stage"] == "notifying"


def test_a_decision_for_a_ticket_stalled_as_it_is_raised_answers_503_to_retry(world):
    # Read as running, then refused by the runtime ("workflow is stalled"): an upgrade holds it.
    client, workflows, *_ = world
    workflows.instances["T-11"] = waiting("T-11")

    def refuse(instance, event, data):
        raise InstanceStalled(instance.instance_id)

    workflows.on_event = refuse
    response = client.post("/support/approve/T-11", json={"approved": True})
    assert response.status_code == 503 and "held by the runtime" in response.json()["detail"]
    assert response.headers["Retry-After"]


def test_a_decision_raised_while_the_workflow_moves_between_replicas_answers_503_then_applies(world):
    # daprd refuses the raise when another host wrote the workflow's state meanwhile (its actor
    # moving while placement changes); the same decision sent again is delivered.
    client, workflows, *_ = world
    workflows.instances["T-12"] = waiting("T-12")
    raised = []

    def refuse_once(instance, event, data):
        raised.append(data["decision_id"])
        if len(raised) == 1:
            raise RpcFailure(grpc.StatusCode.UNKNOWN, "possible etag mismatch. error from state store")
        instance.custom_status.update(stage="notifying", acks=[
            {"decision_id": data["decision_id"], "revision": data["revision"], "outcome": "applied"}])

    workflows.on_event = refuse_once
    response = client.post("/support/approve/T-12", json={"approved": True})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "retry" in response.json()["detail"]
    again = client.post("/support/approve/T-12", json={"approved": True})
    assert again.status_code == 202 and again.json()["status"] == "accepted", again.text
    assert raised[0] == raised[1]  # the decision recorded first is the one raised again


def test_a_stalled_ticket_shows_the_stage_its_workflow_last_recorded(world):
    # The runtime answers a STALLED instance (held for a version no replica runs) with no
    # custom status; the ticket's last progress record says where it is.
    client, workflows, _, read_model, _ = world
    stalled = waiting("T-7", revision=1)
    stalled.runtime_status, stalled.custom_status = "stalled", {}
    workflows.instances["T-7"] = stalled
    read_model.apply(ProgressRecord(ticket_id="T-7", seq=4, progress=TicketProgress(
        customer_id="CUST001", stage="awaiting_approval", revision=1, awaiting_decision=True,
        workflow_version="v3")))
    status = client.get("/support/status/T-7").json()
    assert (status["status"], status["stage"], status["revision"], status["version"]) == \
        ("stalled", "awaiting_approval", 1, "v3")
    # Not decidable while stalled: the status does not say it waits for a decision.
    assert status["awaiting_decision"] is False
    # A running instance's own custom status wins over the read model.
    workflows.instances["T-8"] = waiting("T-8")
    read_model.apply(ProgressRecord(ticket_id="T-8", seq=1, progress=TicketProgress(stage="triage")))
    assert client.get("/support/status/T-8").json()["stage"] == "awaiting_approval"


class _ServerRestarting(Exception):
    """What a client library raises while the database server restarts (psycopg's OperationalError)."""


def test_views_answer_503_with_retry_after_while_the_read_models_database_restarts(world):
    # PostgreSQL restarting under the read model: the list and the timeline say "retry shortly"
    # (503 with Retry-After), not 500; once it is back, the same requests answer.
    client, workflows, _, read_model, _ = world
    workflows.instances["R-1"] = waiting("R-1")
    read_model.apply(ProgressRecord(ticket_id="R-1", seq=1, progress=TicketProgress(
        customer_id="CUST001", filed_at="2026-11-23T12:00:00+00:00", stage="awaiting_approval"),
        events=[TimelineEvent(key="filed", kind="filed", actor="tester", at="2026-11-23T12:00:00+00:00")]))
    backend, down = read_model._backend, {"now": True}
    real_execute = backend.execute

    def execute(sql, args=()):
        if down["now"]:
            raise _ServerRestarting("the database system is starting up")
        return real_execute(sql, args)

    backend.unreachable, backend.execute = (_ServerRestarting,), execute
    for path in ("/support/tickets", "/support/tickets/R-1/timeline"):
        response = client.get(path)
        assert response.status_code == 503, (path, response.text)
        assert response.headers["Retry-After"] == "2" and "read model" in response.json()["detail"]
    down["now"] = False
    assert [t["ticket_id"] for t in client.get("/support/tickets").json()["tickets"]] == ["R-1"]
    assert [e["kind"] for e in client.get("/support/tickets/R-1/timeline").json()["events"]] == ["filed"]


@pytest.mark.parametrize("code", [grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.CANCELLED])
def test_a_decision_the_sidecar_did_not_answer_answers_503_to_retry_not_500(world, code):
    # Past the deadline, sidecar unreachable, or its stream reset under the call (daprd did so
    # for a decision to a workflow the runtime had wedged): the client may send it again.
    client, workflows, *_ = world
    workflows.instances["T-13"] = waiting("T-13")

    def fail(instance, event, data):
        raise RpcFailure(code, "Stream removed" if code == grpc.StatusCode.CANCELLED else "")

    workflows.on_event = fail
    response = client.post("/support/approve/T-13", json={"approved": True})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1", response.text
    assert "sidecar" in response.json()["detail"]


def test_a_status_the_runtime_cannot_read_answers_503_with_why_not_500(world, monkeypatch):
    # daprd's read of the workflow's state found its metadata naming an inbox entry the store does
    # not hold (torn by a save between its two reads, or left so by a stall): the gateway read it
    # again already; the client is told why and may retry.
    client, workflows, *_ = world

    def torn(instance_id, payloads=True):
        raise RpcFailure(grpc.StatusCode.UNKNOWN, "workflow 'T-14': inbox key 'inbox-000000' declared in metadata "
                                                  "(inboxLength=1) but missing from state store")

    monkeypatch.setattr(workflows, "get", torn)
    response = client.get("/support/status/T-14")
    assert response.status_code == 503 and response.headers["Retry-After"] == "2", response.text
    assert "could not read this workflow's state" in response.json()["detail"]
