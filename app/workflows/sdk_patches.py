"""Four corrections to the pinned workflow SDK (dapr-ext-workflow 1.18.3), applied when the worker
is built; remove it once the SDK carries the fix.

While an instance is suspended, the SDK's replayer buffers every history event until it is
resumed (`_is_suspendable`), including the events that merely record the workflow's own
commands (TaskScheduled, TimerCreated, ...). daprd keeps applying the commands the workflow
issued before the suspension arrived in the same batch, so on the next replay those records are
held back, the command looks unissued and is issued again: the history gets a second
TaskScheduled with the same id and the instance fails at resume with "A previous execution
called call_activity with ID=3, but the current execution doesn't have this action" (seen with
pause right after filing; tests/integration/test_lifecycle.py holds a ticket that way).
Only inputs (results, events, timers firing) should wait for the resume.

And an external event whose payload is not JSON (anyone who can reach the sidecar can raise
one) fails the whole instance inside the SDK ("Expecting value: line 1 column 1") before the
workflow sees it. The replayer's JSON decoding keeps the raw text instead when it does not
parse, so the workflow validates it like any other payload, drops it and records why.

And a history in which daprd 1.18.1 recorded one of the workflow's commands twice no longer fails
the instance. After a turn it cancelled mid-way (a control-plane process killed), daprd can hand
the worker the same turn again and append the command it issued a second time, with the same id
(docs/benchmarks.md, "Runtime problems found"; seen in the replicated kill-each-kind test). The
SDK's replayer then finds no pending action for the second record and fails the instance with
"A previous execution called call_activity with ID=N ...". A record of a command already
confirmed, with the same id and the same target, can only be such a copy: the replayer skips it.
The activity itself may have run twice; every activity is idempotent by ticket and step.

And the patches a turn recorded are known from that turn on, even while the instance is
suspended. The runtime records a turn's patches in its OrchestratorStarted event, and the SDK
buffers that event with the inputs while suspended. At the resume, an input that arrived while
suspended (a decision, a failed step) replays before the event that recorded the patch its first
run read, so `is_patched` answers False on replay; the code then reports fewer patches than the
history holds and daprd stalls the instance (PATCH_MISMATCH; seen in test_restarts.py with a
patch read when a decision applies). The event's clock still waits for the resume as before.
"""

from __future__ import annotations

import json

from dapr.ext.workflow._durabletask import worker as _worker

# History events that record what the workflow itself did; never held back by a suspension.
COMMAND_RECORDS = frozenset({"taskScheduled", "timerCreated", "childWorkflowInstanceCreated", "eventSent"})
_original = _worker._is_suspendable


def _is_suspendable(event) -> bool:
    return event.WhichOneof("eventType") not in COMMAND_RECORDS and _original(event)


# What identifies a confirmed command, by the kind of its record (eventSent confirms nothing).
_COMMAND_TARGET = {
    "taskScheduled": lambda e: e.taskScheduled.name,
    "timerCreated": lambda e: e.timerCreated.fireAt.ToJsonString(),
    "childWorkflowInstanceCreated": lambda e: (e.childWorkflowInstanceCreated.name,
                                               e.childWorkflowInstanceCreated.instanceId),
}
_original_process_event = _worker._OrchestrationExecutor.process_event


def _read_patches_of_a_held_turn(executor, ctx, event) -> None:
    if executor._is_suspended and event.HasField("workflowStarted"):
        # A fact of the history, not an input: read at the resume, it would come too late.
        for patch in event.workflowStarted.version.patches:
            ctx._history_patches[patch] = True


def _process_event(self, ctx, event) -> None:
    _read_patches_of_a_held_turn(self, ctx, event)
    target = _COMMAND_TARGET.get(event.WhichOneof("eventType"))
    if target is None:
        return _original_process_event(self, ctx, event)
    confirmed = ctx.__dict__.setdefault("_confirmed_commands", {})
    key = (event.WhichOneof("eventType"), event.eventId)
    if key in confirmed and event.eventId not in ctx._pending_actions and confirmed[key] == target(event):
        return None  # the runtime's second record of a command already confirmed
    _original_process_event(self, ctx, event)
    confirmed[key] = target(event)
    return None


class _TolerantShared:
    """The SDK's `shared` helpers as the replayer sees them, with a JSON decoder that hands back
    text that is not JSON instead of raising."""

    def __init__(self, shared):
        self._shared = shared

    def __getattr__(self, name):
        return getattr(self._shared, name)

    def from_json(self, text):
        try:
            return self._shared.from_json(text)
        except json.JSONDecodeError:
            return text


def apply() -> None:
    if _worker._OrchestrationExecutor.process_event is not _process_event:
        _worker._OrchestrationExecutor.process_event = _process_event
    if _worker._is_suspendable is not _is_suspendable:
        _worker._is_suspendable = _is_suspendable
    if not isinstance(_worker.shared, _TolerantShared):
        _worker.shared = _TolerantShared(_worker.shared)
