"""app/services/operations.py, the /ops routes and the terminal command, with the project's own
seams swapped (an in-memory workflow gateway and state store): history rendering, stuck
detection, listing, the audit log, claims, actions (state checks, audit, read model), roles."""

from __future__ import annotations

import copy
import json
from argparse import Namespace
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from google.protobuf import wrappers_pb2

from app.api import deps
from app.api.auth import current_principal
from app.core.config import Settings, get_settings
from app.core.security import Principal
from app.main import create_app
from app.ops.__main__ import build_parser, run
from app.readmodel.store import ReadModel
from app.services import operations
from app.services.operations import Actor, OpsConflict
from app.services.tickets import TicketConflict
from app.services.workflow_gateway import Instance
from app.store import ETagConflict
from app.workflows.contracts import ProgressRecord, TicketProgress
from app.workflows.replay import pb
from tests.api.fakes import FakeWorkflows, waiting

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
OPERATOR = Actor("op-1", "operator")


class EtagStore:
    """The StateStore calls operations.py makes, with ETags and first-write semantics."""

    def __init__(self):
        self.values: dict = {}
        self.etags: dict = {}
        self.insert_race: list = []  # values another writer inserts just before our next insert

    def get(self, key):
        return (copy.deepcopy(self.values[key]), self.etags[key]) if key in self.values else (None, None)

    def get_value(self, key):
        return self.get(key)[0]

    def get_many(self, keys):
        return {k: copy.deepcopy(self.values[k]) for k in keys if k in self.values}

    def insert_if_absent(self, key, value):
        if self.insert_race:
            self._put(key, self.insert_race.pop(0))
        if key in self.values:
            return False, copy.deepcopy(self.values[key])
        self._put(key, value)
        return True, value

    def save(self, key, value, etag=None):
        if etag is not None and self.etags.get(key) != etag:
            raise ETagConflict(key)
        self._put(key, value)

    def _put(self, key, value):
        self.values[key] = copy.deepcopy(value)
        self.etags[key] = str(int(self.etags.get(key, "0")) + 1)


def instance(instance_id="T-1", status="running", stage="triage", updated=NOW - timedelta(seconds=30),
             name="ticket_workflow", **extra) -> Instance:
    return Instance(instance_id=instance_id, name=name, runtime_status=status,
                    created_at=(updated - timedelta(minutes=1)).isoformat(), last_updated_at=updated.isoformat(),
                    custom_status={"stage": stage}, input={"ticket_id": instance_id, "approval_timeout_seconds": 3600},
                    **extra)


# -- history ----------------------------------------------------------------------------------
def _event(event_id: int, **kind) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=event_id, **kind)
    event.timestamp.FromDatetime(NOW.replace(tzinfo=None))
    return event


def _text(value) -> wrappers_pb2.StringValue:
    return wrappers_pb2.StringValue(value=json.dumps(value))


def test_history_names_activities_timers_events_children_and_failures():
    retry = pb.TimerCreatedEvent(activityRetry=pb.TimerOriginActivityRetry(taskExecutionId="x"))
    retry.fireAt.FromDatetime(datetime(2026, 11, 23, 12, 0, 5))
    forever = pb.TimerCreatedEvent(externalEvent=pb.TimerOriginExternalEvent(name="ticket_cancelled"))
    forever.fireAt.FromDatetime(datetime(9999, 12, 31, 23, 59, 59))
    events = [
        _event(-1, executionStarted=pb.ExecutionStartedEvent(name="ticket_workflow", input=_text({"ticket_id": "T-1"}))),
        _event(0, taskScheduled=pb.TaskScheduledEvent(name="triage_ticket", input=_text({"ticket_id": "T-1"}))),
        _event(-1, taskFailed=pb.TaskFailedEvent(taskScheduledId=0, failureDetails=pb.TaskFailureDetails(
            errorType="InjectedFault", errorMessage="injected fault in triage_ticket"))),
        _event(1, timerCreated=retry),
        _event(-1, timerFired=pb.TimerFiredEvent(timerId=1)),
        _event(2, timerCreated=forever),
        _event(3, childWorkflowInstanceCreated=pb.ChildWorkflowInstanceCreatedEvent(
            instanceId="T-1.triage", name="dapr.agents.ticket-triage.workflow", input=_text({"task": "t"}))),
        _event(-1, childWorkflowInstanceCompleted=pb.ChildWorkflowInstanceCompletedEvent(
            taskScheduledId=3, result=_text({"content": "ok"}))),
        _event(-1, eventRaised=pb.EventRaisedEvent(name="solution_approved", input=_text({"approved": True}))),
        _event(-1, executionSuspended=pb.ExecutionSuspendedEvent()),
        _event(-1, executionTerminated=pb.ExecutionTerminatedEvent(input=_text({"terminated_by": "op-1"}))),
    ]
    rendered = operations.render_history(events)
    summaries = [e["summary"] for e in rendered]
    assert summaries == [
        "workflow ticket_workflow started",
        "activity triage_ticket scheduled",
        "activity triage_ticket failed: injected fault in triage_ticket",
        "retry of a failed activity, fires at 2026-11-23T12:00:05+00:00",
        "retry of a failed activity fired",
        "timeout of the wait for event ticket_cancelled, never fires (no timeout)",
        "child workflow T-1.triage (dapr.agents.ticket-triage.workflow) started",
        "child workflow dapr.agents.ticket-triage.workflow completed",
        "event solution_approved received",
        "suspended",
        "workflow terminated",
    ]
    assert rendered[0]["input"] == {"ticket_id": "T-1"} and rendered[0]["at"] == NOW.isoformat()
    assert rendered[2]["failure"]["type"] == "InjectedFault" and rendered[2]["name"] == "triage_ticket"
    assert rendered[6]["child_id"] == "T-1.triage"
    assert rendered[7]["output"] == {"content": "ok"}
    assert rendered[10]["input"] == {"terminated_by": "op-1"}


# -- listing and stuck detection --------------------------------------------------------------
def test_stuck_is_running_without_progress_but_a_wait_for_a_person_only_after_its_timeout():
    assert operations.is_stuck(instance(updated=NOW - timedelta(minutes=20)), 600, NOW)
    assert not operations.is_stuck(instance(updated=NOW - timedelta(minutes=5)), 600, NOW)
    assert not operations.is_stuck(instance(status="suspended", updated=NOW - timedelta(days=1)), 600, NOW)
    assert not operations.is_stuck(instance(status="completed", updated=NOW - timedelta(days=1)), 600, NOW)
    waiting_long = instance(stage="awaiting_approval", updated=NOW - timedelta(minutes=50))
    assert not operations.is_stuck(waiting_long, 600, NOW)  # approval timeout 1 h not yet passed
    assert operations.is_stuck(instance(stage="awaiting_approval", updated=NOW - timedelta(minutes=71)), 600, NOW)


def test_an_instance_whose_history_holds_a_step_scheduled_twice_is_shown_stuck_with_the_runtimes_fault():
    workflows = FakeWorkflows()
    workflows.instances["T-W"] = instance("T-W", stage="notifying", updated=NOW - timedelta(seconds=30))
    scheduled = _event(7, taskScheduled=pb.TaskScheduledEvent(name="deliver_notification"))
    workflows.histories["T-W"] = [_event(-1, workflowStarted=pb.WorkflowStartedEvent()), scheduled,
                                  _event(-1, workflowStarted=pb.WorkflowStartedEvent()), scheduled]
    detail = operations.instance_detail(workflows, EtagStore(), Settings(stuck_after=600), "T-W", now=NOW)
    assert detail["instance"]["stuck"] is True  # at once, not after stuck_after
    assert "'deliver_notification' as scheduled twice" in detail["instance"]["runtime_fault"]
    # The same history on an instance its replay failed: named, and not stuck (it is finished).
    workflows.instances["T-W"] = instance("T-W", status="failed", stage="notifying", updated=NOW)
    detail = operations.instance_detail(workflows, EtagStore(), Settings(stuck_after=600), "T-W", now=NOW)
    assert detail["instance"]["stuck"] is False
    assert "its replay failed the instance" in detail["instance"]["runtime_fault"]
    workflows.instances["T-W"] = instance("T-W", stage="notifying", updated=NOW - timedelta(seconds=30))
    workflows.histories["T-W"] = workflows.histories["T-W"][:2]  # one scheduling: an ordinary wait
    detail = operations.instance_detail(workflows, EtagStore(), Settings(stuck_after=600), "T-W", now=NOW)
    assert (detail["instance"]["stuck"], detail["instance"]["runtime_fault"]) == (False, None)


def test_listing_counts_every_instance_and_filters_rows():
    workflows = FakeWorkflows()
    workflows.instances = {
        "T-1": instance("T-1", updated=NOW - timedelta(hours=2)),
        "T-1.triage": instance("T-1.triage", name="dapr.agents.ticket-triage.workflow", updated=NOW),
        "T-2": instance("T-2", status="completed", stage="completed", updated=NOW - timedelta(days=3),
                        output={"stage": "completed"}),
        "T-3": instance("T-3", status="terminated", updated=NOW),
    }
    settings = Settings(stuck_after="10m")
    listing = operations.list_instances(workflows, settings, now=NOW)
    assert listing.total == 4 and listing.by_status == {"running": 2, "completed": 1, "terminated": 1}
    assert listing.by_stage["cancelled"] == 1 and listing.stuck == 1
    kinds = {r.instance_id: (r.kind, r.parent_id, r.stuck) for r in listing.rows}
    assert kinds["T-1.triage"] == ("agent run", "T-1", False) and kinds["T-1"] == ("ticket", None, True)
    assert [r.instance_id for r in operations.list_instances(workflows, settings, status="running", now=NOW).rows] \
        == ["T-1.triage", "T-1"]
    assert [r.instance_id for r in operations.list_instances(workflows, settings, stuck_only=True, now=NOW).rows] == ["T-1"]
    older = operations.list_instances(workflows, settings, older_than=24 * 3600, now=NOW)
    assert [r.instance_id for r in older.rows] == ["T-2"] and older.total == 4


def test_listing_shows_versions_counts_those_still_running_and_why_an_instance_is_stalled():
    workflows = FakeWorkflows()
    v1_waiting = instance("T-1", stage="awaiting_approval")
    v1_waiting.custom_status["version"] = "v1"
    v2_done = instance("T-2", status="completed", stage="completed", output={"stage": "completed", "version": "v2"})
    stalled = instance("T-3", status="stalled")
    stalled.custom_status = {}
    workflows.instances = {"T-1": v1_waiting, "T-2": v2_done, "T-3": stalled}
    workflows.histories["T-3"] = [
        _event(-1, workflowStarted=pb.WorkflowStartedEvent(version=pb.WorkflowVersion(name="v9"))),
        _event(-1, executionStalled=pb.ExecutionStalledEvent(
            reason=pb.VERSION_NOT_AVAILABLE, description="version v9 is not registered on this worker"))]
    settings = Settings(stuck_after="10m")
    listing = operations.list_instances(workflows, settings, now=NOW)
    rows = {r.instance_id: r for r in listing.rows}
    assert (rows["T-1"].version, rows["T-2"].version, rows["T-3"].version) == ("v1", "v2", "v9")
    assert rows["T-3"].stalled_reason == "version v9 is not registered on this worker"
    assert rows["T-1"].stalled_reason is None
    assert listing.by_version == {"v1": 1, "v2": 1, "v9": 1}
    assert listing.running_by_version == {"v1": 1, "v9": 1}
    only_v1 = operations.list_instances(workflows, settings, version="v1", now=NOW)
    assert [r.instance_id for r in only_v1.rows] == ["T-1"] and only_v1.total == 3


# -- audit and claims ---------------------------------------------------------------------------
def test_audit_entries_are_appended_in_order_and_a_racing_writer_takes_its_own_slot():
    records = EtagStore()
    operations.append_audit(records, "T-1", "suspend", OPERATOR, {"reason": "a"})
    records.insert_race = [{"id": "other", "action": "resume", "actor": "op-2", "at": NOW.isoformat()}]
    operations.append_audit(records, "T-1", "terminate", OPERATOR)
    assert [e["action"] for e in operations.read_audit(records, "T-1")] == ["suspend", "resume", "terminate"]
    assert sorted(records.values) == ["audit:T-1:0", "audit:T-1:1", "audit:T-1:2"]
    for n in range(3, 45):  # past one page of the bulk read
        operations.append_audit(records, "T-1", "raise_event", OPERATOR)
    assert len(operations.read_audit(records, "T-1")) == 45


def test_a_claim_is_held_by_one_engineer_until_released():
    records = EtagStore()
    alice, bob = Actor("alice", "engineer"), Actor("bob", "engineer")
    operations.claim(records, "T-1", alice)
    assert operations.claim(records, "T-1", alice)["holder"] == "alice"  # again: no-op
    with pytest.raises(TicketConflict, match="alice holds"):
        operations.claim(records, "T-1", bob)
    with pytest.raises(TicketConflict, match="alice holds"):
        operations.unclaim(records, "T-1", bob)
    operations.unclaim(records, "T-1", alice)
    assert operations.claims_of(records, ["T-1"]) == {}
    operations.claim(records, "T-1", bob)
    assert operations.claims_of(records, ["T-1", "T-2"])["T-1"]["holder"] == "bob"
    kinds = [e["kind"] for e in operations.audit_timeline_events(records, "T-1")]
    assert kinds == ["claimed", "unclaimed", "claimed"]


def test_timeline_merge_orders_by_time_and_keeps_untimed_events_last():
    events = [{"kind": "filed", "at": "2026-11-23T12:00:00+00:00"}, {"kind": "terminated", "at": ""}]
    extra = [{"kind": "operator_suspend", "at": "2026-11-23T11:59:00+00:00"},
             {"kind": "claimed", "at": "2026-11-23T12:05:00+00:00"}]
    assert [e["kind"] for e in operations.merge_timeline(events, extra)] == \
        ["operator_suspend", "filed", "claimed", "terminated"]


# -- actions --------------------------------------------------------------------------------------
@pytest.fixture
def read_model(tmp_path):
    model = ReadModel(f"sqlite:///{tmp_path}/rm.db")
    yield model
    model.close()


def _row(read_model, ticket_id):
    read_model.apply(ProgressRecord(ticket_id=ticket_id, seq=1, progress=TicketProgress(
        stage="awaiting_approval", awaiting_decision=True, filed_at=NOW.isoformat())))


def test_actions_check_the_state_audit_first_and_correct_the_read_model(read_model):
    workflows, records = FakeWorkflows(), EtagStore()
    workflows.instances["T-1"] = waiting("T-1")
    _row(read_model, "T-1")
    operations.suspend(workflows, records, read_model, OPERATOR, "T-1", "look")
    assert read_model.get("T-1")["status"] == "suspended"
    with pytest.raises(OpsConflict, match="not running"):
        operations.suspend(workflows, records, read_model, OPERATOR, "T-1")
    operations.resume(workflows, records, read_model, OPERATOR, "T-1")
    assert read_model.get("T-1")["status"] == "running"
    with pytest.raises(OpsConflict, match="only a finished instance"):
        operations.purge(workflows, records, read_model, OPERATOR, "T-1")
    operations.raise_event(workflows, records, OPERATOR, "T-1", "solution_approved", {"approved": True})
    assert workflows.raised[-1] == ("T-1", "solution_approved", {"approved": True})
    operations.terminate(workflows, records, read_model, OPERATOR, "T-1", "drill")
    row = read_model.get("T-1")
    assert (row["status"], row["stage"], row["awaiting_decision"]) == ("terminated", "cancelled", False)
    with pytest.raises(OpsConflict, match="already terminated"):
        operations.terminate(workflows, records, read_model, OPERATOR, "T-1")
    operations.purge(workflows, records, read_model, OPERATOR, "T-1")
    assert read_model.get("T-1") is None and "T-1" not in workflows.instances
    audit = operations.read_audit(records, "T-1")
    assert [a["action"] for a in audit] == ["suspend", "resume", "raise_event", "terminate", "purge"]
    assert all(a["actor"] == "op-1" and a["role"] == "operator" for a in audit)
    with pytest.raises(operations.InstanceNotFound):
        operations.terminate(workflows, records, read_model, OPERATOR, "T-1")


def test_a_failing_action_is_recorded_as_failed(read_model):
    workflows, records = FakeWorkflows(), EtagStore()
    workflows.instances["T-1"] = waiting("T-1")

    def refuse(instance_id, output=None):
        raise RuntimeError("sidecar said no")

    workflows.terminate = refuse
    with pytest.raises(RuntimeError):
        operations.terminate(workflows, records, read_model, OPERATOR, "T-1")
    audit = operations.read_audit(records, "T-1")
    assert [(a["action"], a["outcome"]) for a in audit] == [("terminate", "requested"), ("terminate", "failed")]
    assert "sidecar said no" in audit[1]["details"]["error"]


def test_bulk_purge_takes_only_finished_instances_older_than_the_cutoff(read_model):
    workflows, records = FakeWorkflows(), EtagStore()
    workflows.instances = {
        "OLD": instance("OLD", status="completed", updated=NOW - timedelta(days=10)),
        "OLD.triage": instance("OLD.triage", status="completed", name="agent", updated=NOW - timedelta(days=10)),
        "NEW": instance("NEW", status="completed", updated=NOW - timedelta(days=1)),
        "RUN": instance("RUN", status="running", updated=NOW - timedelta(days=10)),
    }

    def recursive_purge(instance_id):  # as the runtime purges: the child runs with their parent
        for child in [i for i in workflows.instances if i == instance_id or i.startswith(instance_id + ".")]:
            del workflows.instances[child]

    workflows.purge = recursive_purge
    result = operations.purge_finished(workflows, records, read_model, OPERATOR, 7, now=NOW)
    assert result["purged"] == ["OLD"]  # its agent run went with it, not on its own
    assert set(workflows.instances) == {"NEW", "RUN"}


def test_rerun_needs_a_finished_instance_and_is_audited():
    workflows, records = FakeWorkflows(), EtagStore()
    workflows.instances["T-1"] = instance(status="running")
    calls = []
    with pytest.raises(OpsConflict, match="only a finished instance"):
        operations.rerun_from_event(workflows, records, OPERATOR, "T-1", 3, rerun=lambda *a: calls.append(a))
    workflows.instances["T-1"] = instance(status="completed")
    result = operations.rerun_from_event(workflows, records, OPERATOR, "T-1", 3, "T-1-b",
                                         rerun=lambda i, e, n: calls.append((i, e, n)) or n)
    assert result == {"instance_id": "T-1", "new_instance_id": "T-1-b"} and calls == [("T-1", 3, "T-1-b")]
    assert operations.read_audit(records, "T-1")[-1]["details"] == {"event_id": 3, "new_instance_id": "T-1-b"}


# -- routes and roles ---------------------------------------------------------------------------
@pytest.fixture
def api(tmp_path, read_model):
    app = create_app()
    workflows, records = FakeWorkflows(), EtagStore()
    principal = {"value": Principal("op-1", "operator")}
    app.dependency_overrides.update({
        deps.get_workflows: lambda: workflows, deps.get_records: lambda: records,
        deps.get_read_model: lambda: read_model, deps.get_ready_read_model: lambda: read_model,
        get_settings: lambda: Settings(stuck_after="10m"), current_principal: lambda: principal["value"],
    })
    yield TestClient(app), workflows, records, principal


def test_ops_routes_read_for_engineers_and_act_for_operators_only(api, read_model):
    client, workflows, records, principal = api
    workflows.instances["T-1"] = waiting("T-1")
    _row(read_model, "T-1")
    principal["value"] = Principal("eng-1", "engineer")
    assert client.get("/ops/instances").json()["by_status"] == {"running": 1}
    assert client.get("/ops/instances/T-1").json()["instance"]["stage"] == "awaiting_approval"
    refused = client.post("/ops/instances/T-1/terminate", json={})
    assert refused.status_code == 403 and "role 'engineer' may not" in refused.json()["detail"]
    principal["value"] = Principal("cust", "client")
    assert client.get("/ops/instances").status_code == 403
    principal["value"] = Principal("op-1", "operator")
    assert client.post("/ops/instances/T-1/suspend", json={"reason": "why"}).json()["runtime_status"] == "suspended"
    assert client.post("/ops/instances/T-1/suspend", json={}).status_code == 409
    assert client.post("/ops/instances/NOPE/terminate", json={}).status_code == 404
    assert client.get("/ops/instances", params={"older_than": "soon"}).status_code == 422
    assert client.post("/ops/instances/T-1/events/solution_approved", json={"data": {"x": 1}}).status_code == 200
    timeline_kinds = [a["action"] for a in client.get("/ops/instances/T-1/audit").json()["audit"]]
    assert timeline_kinds == ["suspend", "raise_event"]
    assert client.post("/ops/purge", json={"older_than_days": -1}).status_code == 422


def test_the_ticket_timeline_includes_operator_actions_with_their_actor(api, read_model):
    client, workflows, records, principal = api
    workflows.instances["T-1"] = waiting("T-1")
    _row(read_model, "T-1")
    client.post("/ops/instances/T-1/terminate", json={"reason": "drill"})
    principal["value"] = Principal("eng-1", "engineer")
    events = client.get("/support/tickets/T-1/timeline").json()["events"]
    kinds = [(e["kind"], e["actor"]) for e in events]
    assert ("operator_terminate", "op-1") in kinds and kinds[-1] == ("terminated", "runtime")


# -- the terminal command -----------------------------------------------------------------------
def test_cli_parses_and_runs_the_same_operations(capsys, read_model):
    workflows, records = FakeWorkflows(), EtagStore()
    workflows.instances["T-1"] = waiting("T-1")
    settings = Settings()
    parser = build_parser()
    assert run(parser.parse_args(["list"]), workflows, records, settings) == 0
    assert "T-1" in capsys.readouterr().out
    args = parser.parse_args(["raise-event", "T-1", "solution_approved", '{"approved": true, "revision": 0}'])
    assert run(args, workflows, records, settings) == 0
    assert workflows.raised[-1][2] == {"approved": True, "revision": 0}
    assert run(parser.parse_args(["raise-event", "T-1", "x", "{not json"]), workflows, records, settings) == 2
    assert run(parser.parse_args(["terminate", "T-1", "--reason", "r"]), workflows, records, settings,
               read_model_factory=lambda s: read_model) == 0
    assert run(parser.parse_args(["purge"]), workflows, records, settings) == 2
    audit = operations.read_audit(records, "T-1")
    assert [a["action"] for a in audit] == ["raise_event", "terminate"] and audit[0]["actor"].startswith("cli:")
    assert isinstance(parser.parse_args(["history", "T-1"]), Namespace)
