"""Turns the worker was handed that the runtime never applied (app/core/held_turns.py), from real
work items and instance states as the SDK gives them, on a scripted clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dapr.ext.workflow._durabletask.internal.protos as pb
from google.protobuf.timestamp_pb2 import Timestamp

from app.core.held_turns import HeldTurns, WedgedTurnCheck, turn_events_at
from app.services.workflow_gateway import Instance

T0 = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def _event(at: datetime, **kind) -> pb.HistoryEvent:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return pb.HistoryEvent(eventId=-1, timestamp=stamp, **kind)


def work_item(instance_id: str, *events: pb.HistoryEvent) -> pb.WorkItem:
    return pb.WorkItem(workflowRequest=pb.WorkflowRequest(instanceId=instance_id, newEvents=list(events)))


def completed_at(at: datetime) -> pb.HistoryEvent:
    return _event(at, taskCompleted=pb.TaskCompletedEvent(taskScheduledId=3, result=None))


def instance(instance_id: str, last_updated: datetime) -> Instance:
    # As the gateway gives it: the SDK's datetime (microseconds, naive UTC) in ISO form.
    naive = last_updated.astimezone(timezone.utc).replace(tzinfo=None)
    return Instance(instance_id=instance_id, name="ticket_workflow", runtime_status="running",
                    last_updated_at=naive.replace(tzinfo=timezone.utc).isoformat())


def test_a_turn_is_dated_by_the_newest_event_it_applies_not_by_its_own_start():
    item = work_item("T-1", _event(T0 + timedelta(seconds=5), workflowStarted=pb.WorkflowStartedEvent()),
                     completed_at(T0), completed_at(T0 + timedelta(seconds=1)))
    assert turn_events_at(item) == ("T-1", T0 + timedelta(seconds=1))
    assert turn_events_at(pb.WorkItem(activityRequest=pb.ActivityRequest(name="triage"))) is None


def test_a_turn_the_history_holds_is_applied_and_forgotten():
    clock = Clock()
    turns = HeldTurns(clock)
    turns.handed(*turn_events_at(work_item("T-1", completed_at(T0))))
    clock.now += 600
    # A turn that scheduled nothing leaves the history's last event the one it applied: equal.
    assert turns.held_for("T-1", instance("T-1", T0).last_updated_at) is None
    assert turns.held_for("T-1", instance("T-1", T0 - timedelta(seconds=9)).last_updated_at) is None  # forgotten


def test_a_turn_the_history_does_not_hold_is_held_since_it_was_handed():
    clock = Clock()
    turns = HeldTurns(clock)
    turns.handed("T-1", T0)
    clock.now += 61.5
    assert turns.held_for("T-1", instance("T-1", T0 - timedelta(milliseconds=2)).last_updated_at) == 61.5
    assert turns.held_for("T-2", instance("T-2", T0 - timedelta(seconds=5)).last_updated_at) is None  # not ours


class Watchdog:
    after_s = 60.0

    def __init__(self):
        self.held = []

    def turn_held(self, instance_id, held_s):
        self.held.append((instance_id, held_s))
        return True


def test_the_sweeps_check_tells_the_watchdog_only_past_its_after():
    clock, watchdog = Clock(), Watchdog()
    turns = HeldTurns(clock)
    check = WedgedTurnCheck(turns, watchdog)
    turns.handed("T-1", T0)
    stale = instance("T-1", T0 - timedelta(seconds=1))
    clock.now += 30
    assert check({}, stale) is False and watchdog.held == []
    clock.now += 31
    assert check({}, stale) is True and watchdog.held == [("T-1", 61.0)]
    # A newer turn of the same instance starts the wait again.
    turns.handed("T-1", T0 + timedelta(seconds=2))
    assert check({}, stale) is False


def test_a_turn_no_restart_frees_is_restarted_for_twice_then_left_to_a_person():
    clock, watchdog = Clock(), Watchdog()
    turns = HeldTurns(clock)
    check = WedgedTurnCheck(turns, watchdog, max_restarts=2)
    stale = instance("T-1", T0 - timedelta(seconds=1))
    for _ in range(3):
        turns.handed("T-1", T0)  # handed out again after each restart, and held again
        clock.now += 61
        check({}, stale)
    assert [i for i, _ in watchdog.held] == ["T-1", "T-1"]


def test_a_turn_queued_behind_many_in_a_busy_worker_is_no_wedge():
    clock, watchdog = Clock(), Watchdog()
    turns = HeldTurns(clock)
    check = WedgedTurnCheck(turns, watchdog)
    for n in range(9):
        turns.handed(f"T-{n}", T0)
    clock.now += 61
    stale = instance("T-0", T0 - timedelta(seconds=1))
    assert turns.queued_behind("T-0") == 8 and check({}, stale) is False
    for n in range(1, 9):
        turns.answered(f"T-{n}")
    assert check({}, stale) is True
    # A turn the worker answered and the runtime did not apply (its answer lost) is a wedge however busy.
    for n in range(1, 12):
        turns.handed(f"U-{n}", T0)
    turns.handed("T-9", T0)
    turns.answered("T-9")
    clock.now += 61
    assert turns.queued_behind("T-9") == 0
    assert check({}, instance("T-9", T0 - timedelta(seconds=1))) is True
