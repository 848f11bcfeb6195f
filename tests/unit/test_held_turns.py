"""Turns the worker was handed that the runtime never applied (app/core/held_turns.py), from real
work items, histories and instance states as the SDK gives them, on a scripted clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dapr.ext.workflow._durabletask.internal.protos as pb
from google.protobuf.timestamp_pb2 import Timestamp

from app.core.held_turns import BUSY_WORKER, HeldTurns, WedgedTurnCheck, turn_started
from app.services.workflow_gateway import Instance

# Nanoseconds, as the sidecar stamps events; the SDK gives an instance's last change in microseconds.
T0 = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def stamp(at: datetime, extra_nanos: int = 789) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(at)
    value.nanos += extra_nanos
    return value


def started_event(at: Timestamp) -> pb.HistoryEvent:
    return pb.HistoryEvent(eventId=-1, timestamp=at, workflowStarted=pb.WorkflowStartedEvent())


def completed_event(at: datetime) -> pb.HistoryEvent:
    return pb.HistoryEvent(eventId=-1, timestamp=stamp(at, 0), taskCompleted=pb.TaskCompletedEvent(taskScheduledId=3))


def instance(instance_id: str, last_updated: datetime) -> Instance:
    # As the gateway gives it: the SDK's datetime (microseconds, UTC) in ISO form.
    return Instance(instance_id=instance_id, name="ticket_workflow", runtime_status="running",
                    last_updated_at=last_updated.isoformat())


class Workflows:
    def __init__(self):
        self.histories: dict[str, list[pb.HistoryEvent]] = {}
        self.reads = 0

    def history(self, instance_id: str) -> list:
        self.reads += 1
        return self.histories.get(instance_id, [])


class Watchdog:
    after_s = 60.0

    def __init__(self):
        self.held = []

    def turn_held(self, instance_id, held_s):
        self.held.append((instance_id, held_s))
        return True


def rig():
    clock, watchdog, workflows = Clock(), Watchdog(), Workflows()
    turns = HeldTurns(clock)
    return clock, turns, WedgedTurnCheck(turns, watchdog, workflows), watchdog, workflows


def test_a_turn_is_dated_by_its_own_start_event():
    start = stamp(T0 + timedelta(seconds=5))
    item = pb.WorkItem(workflowRequest=pb.WorkflowRequest(
        instanceId="T-1", newEvents=[started_event(start), completed_event(T0)]))
    assert turn_started(item) == ("T-1", start)
    assert turn_started(pb.WorkItem(activityRequest=pb.ActivityRequest(name="triage"))) is None


def test_a_turn_with_a_later_change_is_applied_and_forgotten_without_reading_the_history():
    clock, turns, check, watchdog, workflows = rig()
    turns.handed("T-1", stamp(T0))
    clock.now += 600
    assert check({}, instance("T-1", T0 + timedelta(milliseconds=3))) is False  # a step it added
    assert turns.held_for("T-1", instance("T-1", T0 - timedelta(seconds=9)).last_updated_at) is None
    assert workflows.reads == 0 and watchdog.held == []


def test_a_turn_that_added_no_step_is_found_applied_in_the_history():
    # Its newest event is the activity result it applied, older than the turn's start.
    clock, turns, check, watchdog, workflows = rig()
    start = stamp(T0)
    turns.handed("T-1", start)
    workflows.histories["T-1"] = [started_event(start), completed_event(T0 - timedelta(milliseconds=2))]
    clock.now += 61
    assert check({}, instance("T-1", T0 - timedelta(milliseconds=2))) is False and watchdog.held == []
    assert turns.held_for("T-1", instance("T-1", T0 - timedelta(milliseconds=2)).last_updated_at) is None


def test_a_turn_the_history_does_not_hold_past_after_restarts_the_sidecar():
    clock, turns, check, watchdog, workflows = rig()
    turns.handed("T-1", stamp(T0))
    workflows.histories["T-1"] = [started_event(stamp(T0 - timedelta(seconds=30)))]  # an older turn's
    stale = instance("T-1", T0 - timedelta(seconds=1))
    clock.now += 30
    assert check({}, stale) is False and workflows.reads == 0  # not yet past after_s
    clock.now += 31
    assert check({}, stale) is True and watchdog.held == [("T-1", 61.0)]
    # A newer turn of the same instance starts the wait again; another worker's turns are not ours.
    turns.handed("T-1", stamp(T0 + timedelta(seconds=2)))
    assert check({}, stale) is False
    assert check({}, instance("T-2", T0 - timedelta(seconds=5))) is False


def test_a_turn_no_restart_frees_is_restarted_for_twice_then_left_to_a_person():
    clock, turns, check, watchdog, _ = rig()
    stale = instance("T-1", T0 - timedelta(seconds=1))
    for n in range(3):
        turns.handed("T-1", stamp(T0 + timedelta(seconds=n)))  # handed out again after each restart
        clock.now += 61
        check({}, stale)
    assert [i for i, _ in watchdog.held] == ["T-1", "T-1"]


def test_a_turn_queued_behind_many_in_a_busy_worker_is_no_wedge():
    clock, turns, check, watchdog, _ = rig()
    for n in range(BUSY_WORKER + 1):
        turns.handed(f"T-{n}", stamp(T0))
    clock.now += 61
    stale = instance("T-0", T0 - timedelta(seconds=1))
    assert turns.queued_behind("T-0") == BUSY_WORKER and check({}, stale) is False
    for n in range(1, BUSY_WORKER + 1):
        turns.answered(f"T-{n}")
    assert check({}, stale) is True
    # A turn the worker answered and the runtime did not apply (its answer lost) counts however busy.
    for n in range(12):
        turns.handed(f"U-{n}", stamp(T0))
    turns.handed("T-9", stamp(T0))
    turns.answered("T-9")
    clock.now += 61
    assert turns.queued_behind("T-9") == 0
    assert check({}, instance("T-9", T0 - timedelta(seconds=1))) is True
