"""The SDK corrections (app/workflows/sdk_patches.py) on recorded histories, replayed through the
SDK's own executor as the worker runs them: a command the runtime recorded twice is skipped, and a
patch recorded by the turn that resumed a suspended instance is read as recorded."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
from dapr.ext.workflow._durabletask import worker as durabletask_worker

from app.workflows import sdk_patches
from dapr.ext.workflow._durabletask.internal import protos as pb
from google.protobuf import wrappers_pb2 as wrappers

from app.workflows.replay import COMMAND_EVENTS, history_from_json, issued_command, replay
from tests.unit.test_replay_histories import current_runtime

APPROVED = Path(__file__).resolve().parents[1] / "histories" / "v4" / "approve.json"


def _kind(event) -> str:
    return event.WhichOneof("eventType")


def recorded():
    data = json.loads(APPROVED.read_text())
    return data["instance_id"], history_from_json(data["events"])


def with_command_recorded_twice(events, kind: str, name: str | None = None):
    """The history as daprd 1.18.1 left it after answering one turn twice: a second turn with no
    input, recording the same command (same id) again right after the first."""
    index = next(i for i, e in enumerate(events) if _kind(e) == kind
                 and (name is None or e.taskScheduled.name == name))
    turn = max(i for i in range(index) if _kind(events[i]) == "workflowStarted")
    end = next((i for i in range(index, len(events)) if _kind(events[i]) == "workflowStarted"), len(events))
    return events[:end] + [copy.deepcopy(events[turn]), copy.deepcopy(events[index])] + events[end:]


def last_turn(instance_id: str, events) -> list[str]:
    """The commands the current code issues for the history's last turn, given all before it."""
    registry = current_runtime()._WorkflowRuntime__worker._registry
    executor = durabletask_worker._OrchestrationExecutor(registry, logging.getLogger("test"))
    start = max(i for i, e in enumerate(events) if _kind(e) == "workflowStarted")
    inputs = [e for e in events[start:] if _kind(e) not in COMMAND_EVENTS]
    return [issued_command(a) for a in executor.execute(instance_id, events[:start], inputs).actions]


@pytest.fixture(autouse=True)
def patched():
    sdk_patches.apply()


@pytest.mark.parametrize("kind,name", [("taskScheduled", "record_progress"), ("taskScheduled", "triage_ticket"),
                                       ("timerCreated", None)])
def test_a_command_recorded_twice_replays_as_recorded_once(kind, name):
    instance_id, events = recorded()
    expected = last_turn(instance_id, events)
    assert expected and expected[0].startswith("complete ORCHESTRATION_STATUS_COMPLETED")
    doubled = with_command_recorded_twice(events, kind, name)
    assert len(doubled) == len(events) + 2
    assert last_turn(instance_id, doubled) == expected


def test_without_the_correction_the_doubled_record_fails_the_instance(monkeypatch):
    instance_id, events = recorded()
    monkeypatch.setattr(durabletask_worker._OrchestrationExecutor, "process_event",
                        sdk_patches._original_process_event)
    commands = last_turn(instance_id, with_command_recorded_twice(events, "taskScheduled", "record_progress"))
    assert len(commands) == 1 and "ORCHESTRATION_STATUS_FAILED" in commands[0]
    assert "A previous execution called" in commands[0]


def test_a_different_command_under_a_confirmed_id_still_fails():
    """Only a copy is skipped: another activity recorded under a confirmed id is a real mismatch."""
    instance_id, events = recorded()
    doubled = with_command_recorded_twice(events, "taskScheduled", "record_progress")
    copy_at = max(i for i, e in enumerate(doubled) if _kind(e) == "taskScheduled")
    doubled[copy_at].taskScheduled.name = "notify_customer"
    commands = last_turn(instance_id, doubled)
    assert len(commands) == 1 and "ORCHESTRATION_STATUS_FAILED" in commands[0]


OUTAGE = APPROVED.parent / "outage_wait.json"


def with_outage_failure_while_suspended():
    """outage_wait as daprd records it when the instance is suspended before the step failure
    that first read the patch `ride-out-outages` arrives: the failure waits in its own turn, and
    the resume's turn is the one that ran the code and so recorded the patch."""
    data = json.loads(OUTAGE.read_text())
    events = history_from_json(data["events"])
    started = next(i for i, e in enumerate(events) if _kind(e) == "workflowStarted" and e.workflowStarted.version.patches)
    assert _kind(events[started + 1]) == "taskFailed" and _kind(events[started + 2]) == "timerCreated"
    turn, failure = events[started], events[started + 1]

    def turn_start(after_ms: int, patches: bool):
        event = copy.deepcopy(turn)
        if not patches:
            del event.workflowStarted.version.patches[:]
        event.timestamp.FromNanoseconds(turn.timestamp.ToNanoseconds() + after_ms * 1_000_000)
        return event

    suspended = pb.HistoryEvent(eventId=-1, timestamp=turn.timestamp,
                                executionSuspended=pb.ExecutionSuspendedEvent(input=wrappers.StringValue(value="x")))
    resumed = pb.HistoryEvent(eventId=-1, timestamp=turn.timestamp, executionResumed=pb.ExecutionResumedEvent())
    # The failure's turn keeps the original clock: the outage timer is set from it at the resume.
    return data["instance_id"], (events[:started] + [turn_start(-5, False), suspended, turn_start(0, False), failure,
                                                     turn_start(5, True), resumed] + events[started + 2:])


def test_a_patch_read_at_a_resume_replays_as_read():
    instance_id, events = with_outage_failure_while_suspended()
    assert replay(current_runtime(), instance_id, events) is None


def test_without_the_correction_the_resumed_patch_stalls_the_instance(monkeypatch):
    instance_id, events = with_outage_failure_while_suspended()
    monkeypatch.setattr(sdk_patches, "_read_patches_of_a_held_turn", lambda executor, ctx, event: None)
    mismatch = replay(current_runtime(), instance_id, events)
    assert mismatch is not None and "ride-out-outages" in mismatch.expected and "stall" in mismatch.actual
