"""Replays recorded workflow histories through the current code with the SDK's own replay
machinery, to prove that a change to the workflow does not break instances already running.

dapr-ext-workflow (pinned in requirements.txt) replays a history with durabletask's
`_OrchestrationExecutor`; it is private, so this module is its only user. A history is replayed
batch by batch, as the runtime delivered it: for each batch, everything before it is replayed
(`is_replaying` set) and the batch's new events are executed; the commands the code issues must
be the commands recorded after that batch (same kind, name and input), or the replay reports the
instance, the version and the first event that no longer matches.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Iterable

from dapr.ext.workflow import WorkflowRuntime
from dapr.ext.workflow._durabletask import worker as durabletask_worker
from dapr.ext.workflow._durabletask.internal import protos as pb
from google.protobuf import json_format

# Events the runtime records for a command the workflow issued; every other event is an input.
COMMAND_EVENTS = ("taskScheduled", "timerCreated", "childWorkflowInstanceCreated", "eventSent",
                  "executionCompleted")


@dataclass
class ReplayMismatch:
    instance_id: str
    version: str | None
    event_index: int  # the first recorded event that no longer matches
    expected: str
    actual: str

    def __str__(self) -> str:
        return (f"instance {self.instance_id} (version {self.version}): history event {self.event_index} "
                f"expected {self.expected}, the current code gives {self.actual}")


def _kind(event: pb.HistoryEvent) -> str:
    return event.WhichOneof("eventType")


def _text(value) -> str:
    """A protobuf StringValue's JSON, normalised so key order and spacing never differ."""
    raw = value.value if value is not None and value.ByteSize() else ""
    try:
        return json.dumps(json.loads(raw), sort_keys=True) if raw else ""
    except ValueError:
        return raw


def recorded_command(event: pb.HistoryEvent) -> str:
    kind = _kind(event)
    if kind == "taskScheduled":
        return f"activity {event.taskScheduled.name} {_text(event.taskScheduled.input)}"
    if kind == "timerCreated":
        return f"timer {event.timerCreated.fireAt.ToJsonString()}"
    if kind == "childWorkflowInstanceCreated":
        created = event.childWorkflowInstanceCreated
        return f"child {created.name} {created.instanceId} {_text(created.input)}"
    if kind == "eventSent":
        return f"event {event.eventSent.name} {event.eventSent.instanceId}"
    completed = event.executionCompleted
    return f"complete {pb.OrchestrationStatus.Name(completed.workflowStatus)} {_text(completed.result)}"


def issued_command(action) -> str:
    kind = action.WhichOneof("workflowActionType")
    if kind == "scheduleTask":
        return f"activity {action.scheduleTask.name} {_text(action.scheduleTask.input)}"
    if kind == "createTimer":
        return f"timer {action.createTimer.fireAt.ToJsonString()}"
    if kind == "createChildWorkflow":
        created = action.createChildWorkflow
        return f"child {created.name} {created.instanceId} {_text(created.input)}"
    if kind == "sendEvent":
        return f"event {action.sendEvent.name} {action.sendEvent.instance.instanceId}"
    if kind == "completeWorkflow":
        done = action.completeWorkflow
        text = f"complete {pb.OrchestrationStatus.Name(done.workflowStatus)} {_text(done.result)}"
        if done.failureDetails.errorMessage:
            text += f" ({done.failureDetails.errorType}: {done.failureDetails.errorMessage})"
        return text
    return kind or "nothing"


def _batches(events: list[pb.HistoryEvent]) -> list[tuple[int, int, int]]:
    """(start, first command, end) of each batch: a batch starts at an OrchestratorStarted
    event; its inputs come first, then the commands the workflow issued."""
    starts = [i for i, e in enumerate(events) if _kind(e) == "workflowStarted"]
    batches = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(events)
        first_command = next((i for i in range(start + 1, end) if _kind(events[i]) in COMMAND_EVENTS), end)
        batches.append((start, first_command, end))
    return batches


def version_of(events: Iterable[pb.HistoryEvent]) -> str | None:
    for event in events:
        if _kind(event) == "workflowStarted" and event.workflowStarted.version.name:
            return event.workflowStarted.version.name
    return None


def replay(runtime: WorkflowRuntime, instance_id: str, events: list[pb.HistoryEvent]) -> ReplayMismatch | None:
    """None when the current code issues, batch by batch, exactly the recorded commands."""
    registry, version = _registry(runtime), version_of(events)
    for start, first_command, end in _batches(events):
        inputs = [e for e in events[start:first_command] if _kind(e) not in COMMAND_EVENTS]
        # A fresh executor per turn, as the worker makes one per work item (it keeps whether the
        # instance is suspended).
        executor = durabletask_worker._OrchestrationExecutor(registry, logging.getLogger("replay"))
        result = executor.execute(instance_id, events[:start], inputs)
        if (stalled := patch_mismatch(events[:start], list(result.patches or []))) is not None:
            return ReplayMismatch(instance_id, version, start, *stalled)
        issued = [issued_command(a) for a in sorted(result.actions, key=lambda a: a.id)]
        recorded = [(i, recorded_command(events[i])) for i in range(first_command, end)
                    if _kind(events[i]) in COMMAND_EVENTS]
        for n, (index, expected) in enumerate(recorded):
            actual = issued[n] if n < len(issued) else "no command"
            if actual != expected:
                return ReplayMismatch(instance_id, version, index, expected, actual)
        if len(issued) > len(recorded):
            return ReplayMismatch(instance_id, version, end, "no more commands", issued[len(recorded)])
        # The workflow itself may fail in replay (a NonDeterminismError is reported that way).
        for action in result.actions:
            if action.HasField("completeWorkflow") and action.completeWorkflow.failureDetails.errorMessage \
                    and not any(_kind(e) == "executionCompleted" for e in events[first_command:end]):
                return ReplayMismatch(instance_id, version, start, "the workflow to go on",
                                      issued_command(action))
    return None


def patch_mismatch(old_events: list[pb.HistoryEvent], reported: list[str]) -> tuple[str, str] | None:
    """daprd 1.18.1's own check (orchestrator/versioning.go): the patches the history recorded
    must begin the patches the code reports for the turn, or the runtime stalls the instance
    (PATCH_MISMATCH). None when they do; else (expected, actual) for a ReplayMismatch."""
    recorded = [p for e in old_events if _kind(e) == "workflowStarted" for p in e.workflowStarted.version.patches]
    if not recorded or reported[:len(recorded)] == recorded:
        return None
    return f"patches {recorded} first", f"patches {reported} (the runtime would stall the instance)"


def unrecorded_commands(runtime: WorkflowRuntime, instance_id: str, events: list[pb.HistoryEvent]) -> list[str]:
    """The commands the current code issues, once the whole history is replayed, that the
    history does not hold: the answer to its last turn, when the runtime saved that turn and
    lost the answer (app/core/idle_workflow_wake.py). Empty for a workflow that waits on what it
    scheduled, on a timer or on an event. A replay that fails (a version this worker does not
    know, a change that breaks the history) counts as none: that is no lost answer."""
    starts = [e for e in events if _kind(e) == "workflowStarted"]
    if not starts or any(_kind(e) == "executionCompleted" for e in events):
        return []
    executor = durabletask_worker._OrchestrationExecutor(_registry(runtime), _QUIET)
    # Every recorded event replays (no workflow log line is written again); the one new event
    # is a turn's start with nothing in it, as a wake's turn begins.
    tick = pb.HistoryEvent(eventId=-1, timestamp=starts[-1].timestamp, workflowStarted=pb.WorkflowStartedEvent())
    result = executor.execute(instance_id, events, [tick])
    return [issued_command(a) for a in sorted(result.actions, key=lambda a: a.id)
            if a.WhichOneof("workflowActionType") in _GOING_ON
            and not (a.HasField("completeWorkflow") and a.completeWorkflow.failureDetails.errorMessage)]


_GOING_ON = ("scheduleTask", "createTimer", "createChildWorkflow", "sendEvent", "completeWorkflow")
_QUIET = logging.getLogger(__name__ + ".executor")
_QUIET.setLevel(logging.WARNING)  # the executor logs every run at INFO


def _registry(runtime: WorkflowRuntime):
    from app.workflows import sdk_patches

    sdk_patches.apply()  # replay as the worker does
    return runtime._WorkflowRuntime__worker._registry  # the SDK's own registered wrappers


def history_to_json(events: list[pb.HistoryEvent]) -> list[dict]:
    return [json_format.MessageToDict(e) for e in events]


def history_from_json(items: list[dict]) -> list[pb.HistoryEvent]:
    return [json_format.ParseDict(item, pb.HistoryEvent()) for item in items]
