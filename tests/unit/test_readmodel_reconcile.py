"""Reconciling read-model rows with what the runtime says, against a real SQLite read model and
a scripted runtime (the project's WorkflowGateway seam)."""

from __future__ import annotations

import pytest

from app.readmodel.store import ReadModel
from app.readmodel.sync import reconcile
from app.services.workflow_gateway import Instance
from app.workflows.contracts import TICKET_WORKFLOW, WAKE_EVENT, ProgressRecord, TicketProgress


class ScriptedRuntime:
    """Answers get() from a dict of instances; ids it does not hold are purged."""

    def __init__(self, instances: dict[str, Instance]):
        self.instances = instances

    def get(self, instance_id: str, payloads: bool = True) -> Instance | None:
        return self.instances.get(instance_id)


@pytest.fixture
def read_model(tmp_path):
    model = ReadModel(f"sqlite:///{tmp_path}/rm.db")
    yield model
    model.close()


def instance(ticket_id: str, status: str, stage: str) -> Instance:
    return Instance(instance_id=ticket_id, name=TICKET_WORKFLOW, runtime_status=status,
                    custom_status={"stage": stage})


def test_a_completed_instance_whose_last_record_was_lost_gets_its_final_stage(read_model):
    # The workflow recorded `notifying`, then its final record failed after its retries.
    read_model.apply(ProgressRecord(ticket_id="T-1", seq=5, progress=TicketProgress(stage="notifying"), events=[]))
    runtime = ScriptedRuntime({"T-1": instance("T-1", "completed", "completed")})
    [row] = reconcile(runtime, read_model, [read_model.get("T-1")])
    assert (row["status"], row["stage"]) == ("completed", "completed")
    stored = read_model.get("T-1")
    assert (stored["status"], stored["stage"], stored["awaiting_decision"]) == ("completed", "completed", False)
    # A late final record (higher seq) still applies over the reconciled row.
    assert read_model.apply(ProgressRecord(ticket_id="T-1", seq=6, progress=TicketProgress(stage="completed"),
                                           events=[]))


def test_terminated_rows_show_cancelled_and_purged_rows_are_dropped(read_model):
    for ticket_id in ("T-2", "T-3"):
        read_model.apply(ProgressRecord(ticket_id=ticket_id, seq=1,
                                        progress=TicketProgress(stage="awaiting_approval", awaiting_decision=True),
                                        events=[]))
    runtime = ScriptedRuntime({"T-2": instance("T-2", "terminated", "awaiting_approval")})
    rows = reconcile(runtime, read_model, [read_model.get("T-2"), read_model.get("T-3")])
    assert [(r["ticket_id"], r["status"], r["stage"]) for r in rows] == [("T-2", "terminated", "cancelled")]
    assert read_model.get("T-3") is None
    assert read_model.get("T-2")["stage"] == "cancelled"


def file_waiting(read_model, count: int) -> list[str]:
    """`count` rows waiting for a decision, W-0 first."""
    waiting = [f"W-{i}" for i in range(count)]
    for ticket_id in waiting:
        read_model.apply(ProgressRecord(ticket_id=ticket_id, seq=1, events=[],
                                        progress=TicketProgress(stage="awaiting_approval", awaiting_decision=True)))
    return waiting


def test_the_sweep_checks_rows_in_flight_before_the_many_waiting_ones(read_model):
    from app.readmodel.sync import ReadModelSync

    waiting = file_waiting(read_model, 40)
    read_model.apply(ProgressRecord(ticket_id="F-1", seq=1, events=[],
                                    progress=TicketProgress(stage="expert_analysis", awaiting_decision=False)))
    runtime = ScriptedRuntime({**{t: instance(t, "running", "awaiting_approval") for t in waiting},
                               "F-1": instance("F-1", "failed", "expert_analysis")})
    sweep = ReadModelSync(runtime, read_model, batch=5, in_flight=2, min_age=0)
    first = sweep.turn()
    # The failing ticket is the first checked, though 40 rows wait and were filed before it.
    assert first[0] == "F-1" and len(first) == 5
    assert (read_model.get("F-1")["status"], read_model.get("F-1")["stage"]) == ("failed", "failed")
    # The waiting rows share the rest of each turn, least recently checked first: none twice
    # before every one is checked once.
    checked = first[1:]
    while len(checked) < len(waiting):
        checked += sweep.turn()
    assert sorted(checked[:len(waiting)]) == sorted(waiting)


def _worker_answer(instance_id: str, *statuses):
    """A worker's CompleteOrchestratorTask request, as the SDK builds it."""
    import dapr.ext.workflow._durabletask.internal.helpers as ph
    import dapr.ext.workflow._durabletask.internal.protos as pb

    actions = [ph.new_complete_workflow_action(-1, getattr(pb, f"ORCHESTRATION_STATUS_{s}"), "")
               for s in statuses]
    return pb.WorkflowResponse(instanceId=instance_id, actions=actions)


def _work_item(instance_id: str, *event_kinds: str):
    """A work item the runtime streams to the worker, its new events of these kinds."""
    import dapr.ext.workflow._durabletask.internal.protos as pb

    events = []
    for kind in event_kinds:
        event = pb.HistoryEvent()
        getattr(event, kind).SetInParent()
        events.append(event)
    return pb.WorkItem(workflowRequest=pb.WorkflowRequest(instanceId=instance_id, newEvents=events))


def test_the_watch_names_what_an_operator_or_a_failure_changed_and_passes_everything_on():
    from types import SimpleNamespace

    from app.readmodel.runtime_watch import COMPLETE_ORCHESTRATOR_TASK, GET_WORK_ITEMS, RuntimeChangeWatch

    watch = RuntimeChangeWatch(lookups=2)
    items = [_work_item("T-term", "executionTerminated"), _work_item("T-susp", "executionSuspended"),
             _work_item("T-resumed", "executionResumed"), _work_item("T-step", "taskCompleted", "taskCompleted")]
    stream = watch.intercept_unary_stream(lambda details, request: iter(items),
                                          SimpleNamespace(method=GET_WORK_ITEMS), None)
    assert list(stream) == items  # the worker gets every item, unchanged
    for instance_id, statuses in (("T-failed", ("FAILED",)), ("T-done", ("COMPLETED",)), ("T-next", ())):
        sent = watch.intercept_unary_unary(lambda details, request: "sent",
                                           SimpleNamespace(method=COMPLETE_ORCHESTRATOR_TASK),
                                           _worker_answer(instance_id, *statuses))
        assert sent == "sent"
    expected = ["T-failed", "T-resumed", "T-susp", "T-term"]
    # Each noticed instance is due on `lookups` turns (the runtime commits after the answer).
    assert sorted(watch.due()) == expected
    assert sorted(watch.due()) == expected
    assert watch.due() == []


def test_a_lookup_before_the_runtime_commits_the_end_does_not_undo_the_last_record(read_model):
    read_model.apply(ProgressRecord(ticket_id="T-9", seq=7, progress=TicketProgress(stage="escalated"), events=[]))
    assert read_model.get("T-9")["status"] == "completed"
    runtime = ScriptedRuntime({"T-9": instance("T-9", "running", "escalated")})  # not committed yet
    [row] = reconcile(runtime, read_model, [read_model.get("T-9")])
    assert (row["status"], row["stage"]) == ("completed", "escalated")
    assert read_model.get("T-9")["status"] == "completed"
    # What the runtime says once it did end otherwise still counts.
    runtime.instances["T-9"] = instance("T-9", "terminated", "escalated")
    reconcile(runtime, read_model, [read_model.get("T-9")])
    assert read_model.get("T-9")["status"] == "terminated"


def test_the_sweep_looks_up_noticed_instances_first_however_many_wait(read_model):
    from app.readmodel.runtime_watch import RuntimeChangeWatch
    from app.readmodel.sync import ReadModelSync

    waiting = file_waiting(read_model, 40)
    runtime = ScriptedRuntime({t: instance(t, "running", "awaiting_approval") for t in waiting})
    runtime.instances["W-39"] = instance("W-39", "suspended", "awaiting_approval")  # the CLI paused it
    watch = RuntimeChangeWatch()
    sweep = ReadModelSync(runtime, read_model, batch=5, in_flight=2, min_age=0, watch=watch)
    sweep.turn()  # an ordinary turn: W-39, filed last, is not among the first rows checked
    assert read_model.get("W-39")["status"] == "running"
    watch.notice("W-39")
    assert sweep.turn()[0] == "W-39"
    assert read_model.get("W-39")["status"] == "suspended"


class ListingRuntime(ScriptedRuntime):
    """Also lists its instance ids (ListInstanceIDs), counting the listings."""

    listings = 0

    def list_ids(self):
        self.listings += 1
        return iter(list(self.instances))


def test_a_purge_made_around_the_api_is_found_by_the_sweep_without_a_page_read(read_model):
    from app.readmodel.sync import PurgeCheck, ReadModelSync

    waiting = file_waiting(read_model, 40)
    for ticket_id in waiting:  # filed a minute ago
        read_model.apply(ProgressRecord(ticket_id=ticket_id, seq=2, events=[],
                                        progress=TicketProgress(filed_at="2026-12-05T09:00:00+00:00")))
    runtime = ListingRuntime({t: instance(t, "running", "awaiting_approval") for t in waiting})
    check = PurgeCheck(min_interval=60)
    sweep = ReadModelSync(runtime, read_model, batch=5, in_flight=2, min_age=0, purge_check=check)
    assert "W-33" not in sweep.turn()  # nothing purged: an ordinary turn, W-33 not among its rows
    del runtime.instances["W-33"]  # `dapr workflow purge W-33`
    check._next = 0  # the next pass is due
    assert sweep.turn()[0] == "W-33"
    assert read_model.get("W-33") is None
    assert runtime.listings == 2
    described = check.describe()
    assert described["instances_listed"] == 39 and described["seconds_between_passes"] == 60
    # Passes are spaced: within min_interval, no listing.
    sweep.turn()
    assert runtime.listings == 2


def test_a_row_the_listing_missed_is_kept_when_its_instance_exists(read_model):
    from app.readmodel.sync import PurgeCheck, ReadModelSync

    [ticket_id] = file_waiting(read_model, 1)
    runtime = ListingRuntime({ticket_id: instance(ticket_id, "running", "awaiting_approval")})
    runtime.list_ids = lambda: iter([])  # a listing that missed it (paged while keys moved)
    sweep = ReadModelSync(runtime, read_model, batch=5, in_flight=0, min_age=0, purge_check=PurgeCheck())
    assert sweep.turn() == [ticket_id]
    assert read_model.get(ticket_id)["status"] == "running"


def test_a_listing_that_fails_leaves_the_rest_of_the_turn_alone(read_model):
    from app.readmodel.sync import PurgeCheck, ReadModelSync

    [ticket_id] = file_waiting(read_model, 1)
    runtime = ListingRuntime({ticket_id: instance(ticket_id, "suspended", "awaiting_approval")})

    tries = []

    def no_listing():
        tries.append(1)
        raise RuntimeError("state store does not support listing keys")

    runtime.list_ids = no_listing
    check = PurgeCheck()
    sweep = ReadModelSync(runtime, read_model, batch=5, in_flight=0, min_age=0, purge_check=check)
    assert sweep.turn() == [ticket_id]
    assert read_model.get(ticket_id)["status"] == "suspended"
    assert check.suspects(runtime, read_model) == [] and len(tries) == 1  # not tried again at once


def failed(ticket_id: str, failure: str) -> Instance:
    return Instance(instance_id=ticket_id, name=TICKET_WORKFLOW, runtime_status="failed",
                    custom_status={"stage": "triage"}, failure=failure)


def file_in_triage(read_model, ticket_id: str) -> None:
    read_model.apply(ProgressRecord(ticket_id=ticket_id, seq=1, events=[], progress=TicketProgress(
        customer_id="CUST001", stage="triage", priority="high")))


def test_a_ticket_whose_workflow_failed_is_told_once_before_its_row_shows_it(read_model):
    file_in_triage(read_model, "T-F")
    runtime = ScriptedRuntime({"T-F": failed("T-F", "RuntimeError: a bug")})
    told = []

    def on_failed(row, found):
        assert read_model.get("T-F")["status"] == "running"  # told before the row says failed
        told.append((row["ticket_id"], row["customer_id"], row["priority"], found.failure))

    [row] = reconcile(runtime, read_model, [read_model.get("T-F")], on_failed)
    assert (row["status"], row["stage"]) == ("failed", "failed")
    assert told == [("T-F", "CUST001", "high", "RuntimeError: a bug")]
    reconcile(runtime, read_model, [read_model.get("T-F")], on_failed)  # the next turn: already failed
    assert len(told) == 1


def test_a_failed_ticket_that_could_not_be_told_stays_running_and_is_told_on_a_later_turn(read_model):
    file_in_triage(read_model, "T-G")
    runtime = ScriptedRuntime({"T-G": failed("T-G", "RuntimeError: a bug")})
    attempts = []

    def on_failed(row, found):
        attempts.append(row["ticket_id"])
        if len(attempts) == 1:
            raise ConnectionError("pub/sub unreachable")

    [row] = reconcile(runtime, read_model, [read_model.get("T-G")], on_failed)
    assert row["status"] == "running" and read_model.get("T-G")["status"] == "running"
    [row] = reconcile(runtime, read_model, [read_model.get("T-G")], on_failed)
    assert row["status"] == "failed" and attempts == ["T-G", "T-G"]


def test_a_rebuild_tells_of_the_failed_tickets_it_finds(read_model):
    from app.readmodel.sync import rebuild

    class Listing(ScriptedRuntime):
        def list_ids(self):
            return iter(self.instances)

        def history(self, instance_id):
            return []

    runtime = Listing({"T-H": failed("T-H", "RuntimeError: a bug"), "T-OK": instance("T-OK", "running", "triage")})
    told = []
    assert rebuild(runtime, read_model, lambda row, found: told.append((row["ticket_id"], found.failure))) == 2
    assert told == [("T-H", "RuntimeError: a bug")]


def test_each_running_ticket_checked_is_shown_to_the_running_hook_and_its_failure_changes_nothing(read_model):
    for ticket_id in ("T-R", "T-C"):
        file_in_triage(read_model, ticket_id)
    runtime = ScriptedRuntime({"T-R": instance("T-R", "running", "triage"),
                               "T-C": instance("T-C", "completed", "completed")})
    shown = []

    def on_running(row, found):
        shown.append((row["ticket_id"], found.runtime_status))
        raise ConnectionError("pub/sub unreachable")  # logged; the row is unaffected

    def then(row, found):  # each check on its own: the one before failing does not skip it
        shown.append(("then", row["ticket_id"]))

    rows = reconcile(runtime, read_model, [read_model.get("T-R"), read_model.get("T-C")],
                     on_running=[on_running, then])
    assert shown == [("T-R", "running"), ("then", "T-R")]
    assert [(r["ticket_id"], r["status"]) for r in rows] == [("T-R", "running"), ("T-C", "completed")]


class CountingRuntime(ListingRuntime):
    """Also counts the lookups of each instance."""

    def __init__(self, instances: dict[str, Instance]):
        super().__init__(instances)
        self.lookups: dict[str, int] = {}

    def get(self, instance_id: str, payloads: bool = True) -> Instance | None:
        self.lookups[instance_id] = self.lookups.get(instance_id, 0) + 1
        return super().get(instance_id, payloads)

    def raise_event(self, instance_id: str, event: str, data: dict) -> None:
        self.raised = [*getattr(self, "raised", []), (instance_id, event)]


def test_a_ticket_the_runtime_holds_without_a_row_is_adopted_from_its_start(read_model):
    """The runtime lost the turn that would have recorded LOST-6's filing (seen in the replicated
    drill): listed, never in the read model, so no list showed it and no running check saw it."""
    from app.domain.ticket import TicketWorkflowInput
    from app.readmodel.sync import PurgeCheck, ReadModelSync, RowlessInstances

    start = TicketWorkflowInput(ticket_id="LOST-6", customer_id="CUST001", description="Sidecar OOMKilled",
                                filed_at="2026-12-07T10:14:31+00:00", approval_timeout_seconds=3600,
                                max_revisions=2, filed_by="support-tool", use_agents=False)
    runtime = CountingRuntime({
        "LOST-6": Instance(instance_id="LOST-6", name=TICKET_WORKFLOW, runtime_status="running",
                           input=start.model_dump(mode="json")),
        "LOST-6-agent": Instance(instance_id="LOST-6-agent", name="dapr.agents.run", runtime_status="running")})
    clock = [1000.0]
    check = PurgeCheck(min_interval=1, clock=lambda: clock[0])
    sweep = ReadModelSync(runtime, read_model, batch=5, in_flight=2, min_age=0, purge_check=check)
    sweep.turn()
    assert read_model.get("LOST-6") is None and runtime.lookups == {}  # not yet: its first record may be on its way
    clock[0] += RowlessInstances.ADOPT_AFTER_S
    assert "LOST-6" in sweep.turn()
    row = read_model.get("LOST-6")
    assert (row["customer_id"], row["description"], row["stage"], row["status"]) == (
        "CUST001", "Sidecar OOMKilled", "triage", "running")
    assert [e["kind"] for e in read_model.events("LOST-6")] == ["filed"]
    clock[0] += RowlessInstances.ADOPT_AFTER_S
    sweep.turn()
    assert runtime.lookups["LOST-6-agent"] == 1  # no ticket: not looked up again
    # The workflow's own first record, when it comes, replaces the adopted row.
    progress = TicketProgress(stage="triage", workflow_version="v4")
    assert read_model.apply(ProgressRecord(ticket_id="LOST-6", seq=1, progress=progress, events=[]))
    assert read_model.get("LOST-6")["workflow_version"] == "v4"


def test_a_start_the_runtime_holds_with_nothing_to_run_it_is_woken_not_adopted(read_model):
    """daprd describes a start waiting in the inbox as pending with no name and no input: there
    is nothing to make a row from, so the instance is woken (its turn runs the start, and the
    workflow records its filing itself), and asked about again only after ADOPT_AFTER_S."""
    from app.readmodel.sync import PurgeCheck, ReadModelSync, RowlessInstances

    runtime = CountingRuntime({"P-1": Instance(instance_id="P-1", name="", runtime_status="pending")})
    clock = [1000.0]
    check = PurgeCheck(min_interval=1, clock=lambda: clock[0])
    sweep = ReadModelSync(runtime, read_model, batch=5, in_flight=2, min_age=0, purge_check=check)
    sweep.turn()
    clock[0] += RowlessInstances.ADOPT_AFTER_S
    sweep.turn()
    assert runtime.raised == [("P-1", WAKE_EVENT)] and read_model.get("P-1") is None
    clock[0] += 1
    sweep.turn()
    assert runtime.lookups["P-1"] == 1  # not again before another ADOPT_AFTER_S
    clock[0] += RowlessInstances.ADOPT_AFTER_S
    sweep.turn()
    assert runtime.lookups["P-1"] == 2 and len(runtime.raised) == 2
