"""A running workflow whose last turn the runtime saved and whose answer it lost is woken
(app/core/idle_workflow_wake.py): real recorded histories, cut where the runtime would have cut
them, replayed through the current code; the sweep's check on a scripted clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

from dapr.ext.workflow import WorkflowRuntime

from app.core.idle_workflow_wake import IdleWorkflowWake
from app.workflows.contracts import WAKE_EVENT
from app.services.workflow_gateway import Instance
from app.workflows.replay import history_from_json, unrecorded_commands
from app.workflows.runtime import register_ticket_workflows

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=timezone.utc)


def recorded(version: str, path: str):
    data = json.loads((HISTORIES / version / f"{path}.json").read_text())
    return data["instance_id"], history_from_json(data["events"])


def runtime() -> WorkflowRuntime:
    built = WorkflowRuntime()
    register_ticket_workflows(built)
    return built


def kinds(events) -> list[str]:
    return [e.WhichOneof("eventType") for e in events]


def cut_after(events, kind: str, occurrence: int = -1):
    """The history up to and including the given occurrence of an event kind."""
    at = [i for i, k in enumerate(kinds(events)) if k == kind][occurrence]
    return events[:at + 1]


def up_to_the_result_of(events, activity: str):
    scheduled = next(e.eventId for e in events if e.HasField("taskScheduled") and e.taskScheduled.name == activity)
    return events[:next(i for i, e in enumerate(events)
                        if e.HasField("taskCompleted") and e.taskCompleted.taskScheduledId == scheduled) + 1]


def test_a_saved_turn_whose_answer_was_lost_replays_to_the_commands_it_held():
    instance_id, events = recorded("v4", "approve")
    unrecorded = partial(unrecorded_commands, runtime(), instance_id)
    # The turn that applied the last record_progress result, saved without its answer (CRASH-4):
    # the completion is issued again.
    before_completion = events[:kinds(events).index("executionCompleted")]
    [completion] = unrecorded(before_completion)
    assert completion.startswith("complete ORCHESTRATION_STATUS_COMPLETED") and '"stage": "completed"' in completion
    # The notification written, its delivery never scheduled: the delivery is issued again.
    assert [c.split(" ")[:2] for c in unrecorded(up_to_the_result_of(events, "notify_customer"))] == [
        ["activity", "deliver_notification"]]


def test_a_workflow_that_waits_on_a_step_a_timer_or_a_decision_issues_nothing_new():
    instance_id, events = recorded("v4", "approve")
    unrecorded = partial(unrecorded_commands, runtime(), instance_id)
    assert unrecorded(cut_after(events, "taskScheduled", occurrence=0)) == []  # triage scheduled
    waiting = cut_after(events, "timerCreated")  # the approval and SLA timers set
    assert unrecorded(waiting) == []
    assert unrecorded(events) == []  # finished


def test_every_recorded_path_issues_nothing_new_where_it_stopped_between_turns():
    built = runtime()
    for path in sorted(HISTORIES.glob("*/*.json")):
        instance_id, events = recorded(path.parent.name, path.stem)
        starts = [i for i, k in enumerate(kinds(events)) if k == "workflowStarted"]
        # Just before each later turn began, the workflow had answered every earlier one.
        for start in starts[1:]:
            assert unrecorded_commands(built, instance_id, events[:start]) == [], (path, start)


class Workflows:
    def __init__(self, histories: dict):
        self.histories, self.reads, self.raised = histories, 0, []

    def history(self, instance_id: str) -> list:
        self.reads += 1
        return self.histories[instance_id]

    def raise_event(self, instance_id: str, event: str, data: dict) -> None:
        self.raised.append((instance_id, event, data))


def running(instance_id: str, idle_s: float) -> Instance:
    return Instance(instance_id=instance_id, name="ticket_workflow", runtime_status="running",
                    last_updated_at=(NOW - timedelta(seconds=idle_s)).isoformat())


def test_the_sweep_wakes_a_lost_answer_once_per_change_and_at_most_twice():
    lost = {"T-LOST": ["activity deliver_notification {}"], "T-WAITS": []}
    workflows = Workflows({"T-LOST": ["h"], "T-WAITS": ["h"]})
    wake = IdleWorkflowWake(workflows, lambda instance_id, _events: lost[instance_id], after_s=60, now=lambda: NOW)
    assert not wake({"ticket_id": "T-LOST"}, running("T-LOST", 30)) and workflows.reads == 0  # not idle long enough
    assert wake({"ticket_id": "T-LOST"}, running("T-LOST", 61))
    assert workflows.raised == [("T-LOST", WAKE_EVENT, {"idle_seconds": 61})]
    assert not wake({"ticket_id": "T-LOST"}, running("T-LOST", 61)) and workflows.reads == 1  # same change
    assert wake({"ticket_id": "T-LOST"}, running("T-LOST", 90))  # changed (the wake's turn) and lost again
    assert not wake({"ticket_id": "T-LOST"}, running("T-LOST", 120))  # twice is all
    assert len(workflows.raised) == 2
    assert not wake({"ticket_id": "T-WAITS"}, running("T-WAITS", 600))
    assert workflows.reads == 3 and len(workflows.raised) == 2  # not read once woken twice


def test_a_ticket_waiting_for_a_decision_is_read_only_once_it_changed_while_waiting():
    lost = {"T-QUIET": ["activity notify_customer {}"], "T-DECIDED": ["activity notify_customer {}"]}
    workflows = Workflows({"T-QUIET": ["h"], "T-DECIDED": ["h"]})
    wake = IdleWorkflowWake(workflows, lambda instance_id, _events: lost[instance_id], after_s=60, now=lambda: NOW)
    # Waiting since its last change (its timers, stamped just after): not read, however long it waits.
    quiet = running("T-QUIET", 86_400)
    waiting_since = (NOW - timedelta(seconds=86_401)).isoformat()
    assert not wake({"ticket_id": "T-QUIET", "awaiting_decision": True, "awaiting_since": waiting_since}, quiet)
    assert workflows.reads == 0
    # A decision's turn saved an hour after the wait began, its answer lost: read and woken.
    decided = running("T-DECIDED", 120)
    assert wake({"ticket_id": "T-DECIDED", "awaiting_decision": True,
                 "awaiting_since": (NOW - timedelta(hours=1)).isoformat()}, decided)
    assert workflows.raised == [("T-DECIDED", WAKE_EVENT, {"idle_seconds": 120})]


def test_an_instance_still_pending_after_a_while_is_woken_to_run_its_start():
    """Its start waits in the inbox with nothing due to run it (daprd created the start's reminder
    before saving the start, and the reminder ran first): no history to replay, the wake runs it."""
    workflows = Workflows({})
    wake = IdleWorkflowWake(workflows, lambda *_: [], after_s=60, now=lambda: NOW)
    pending = Instance(instance_id="T-PENDING", name="ticket_workflow", runtime_status="pending",
                       created_at=(NOW - timedelta(seconds=30)).isoformat())
    assert not wake({"ticket_id": "T-PENDING"}, pending)  # a start not yet run is not lost yet
    pending.created_at = (NOW - timedelta(seconds=75)).isoformat()
    assert wake({"ticket_id": "T-PENDING"}, pending)
    assert workflows.raised == [("T-PENDING", WAKE_EVENT, {"idle_seconds": 75})] and workflows.reads == 0
    assert not wake({"ticket_id": "T-PENDING"}, pending)  # once per change
