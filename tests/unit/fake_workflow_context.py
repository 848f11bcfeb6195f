"""A stand-in for DaprWorkflowContext that records what the workflow schedules, so its
decisions can be stepped through without a sidecar. Only the workflow's own seam is swapped."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable


@dataclass(eq=False)
class FakeTask:
    kind: str  # activity | event | timer | all | any
    name: str
    input: Any = None
    children: list["FakeTask"] = field(default_factory=list)
    result: Any = None

    def get_result(self):
        if isinstance(self.result, FailedActivity):
            raise task_failed(str(self.result), self.result.error_type)
        return self.result

    @property
    def is_complete(self) -> bool:
        return self.result is not None


@dataclass
class FakeContext:
    instance_id: str = "T-1"
    current_utc_datetime: datetime = datetime(2026, 11, 23, 12, 0, 0)
    is_replaying: bool = False
    statuses: list[dict] = field(default_factory=list)
    # Patches this run applies (a new instance applies every patch it reaches).
    patched: bool = True
    patches: list[str] = field(default_factory=list)

    def is_patched(self, name: str) -> bool:
        if self.patched:
            self.patches.append(name)
        return self.patched

    def call_activity(self, activity, *, input=None, retry_policy=None):
        return FakeTask("activity", activity if isinstance(activity, str) else activity.__name__, input)

    def call_child_workflow(self, workflow, *, input=None, instance_id=None):
        return FakeTask("child", workflow if isinstance(workflow, str) else workflow.__name__,
                        {"instance_id": instance_id, "input": input})

    def wait_for_external_event(self, name):
        return FakeTask("event", name)

    def create_timer(self, fire_at):
        return FakeTask("timer", "timer", fire_at)

    def set_custom_status(self, status: str):
        self.statuses.append(json.loads(status))


def when_all(tasks):
    return FakeTask("all", "when_all", children=list(tasks))


def when_any(tasks):
    return FakeTask("any", "when_any", children=list(tasks))


class FailedActivity(Exception):
    """An activity's result that means it failed after its retries, with the error type the
    activity failed with."""

    def __init__(self, message: str, error_type: str = "RuntimeError"):
        super().__init__(message)
        self.error_type = error_type


def task_failed(message: str, error_type: str = "RuntimeError"):
    from dapr.ext.workflow import TaskFailedError
    import dapr.ext.workflow._durabletask.internal.protos as pb

    return TaskFailedError(message, pb.TaskFailureDetails(errorMessage=message, errorType=error_type))


def run_workflow(workflow, payload: dict, respond: Callable[[FakeTask], Any], ctx: FakeContext | None = None):
    """Drives the workflow generator to the end; returns (output, calls, ctx).

    `respond(task)` gives the result for each yielded task; for when_any it returns the winning
    child; an exception instance returned is thrown into the workflow.
    """
    ctx = ctx or FakeContext()
    generator = workflow(ctx, payload)
    calls: list[tuple] = []
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        try:
            task = generator.throw(to_throw) if to_throw else generator.send(to_send)
        except StopIteration as stop:
            return stop.value, calls, ctx
        to_throw = None
        calls.append(describe(task))
        result = respond(task)
        if isinstance(result, FailedActivity):
            to_throw = task_failed(str(result), result.error_type)
        else:
            to_send = result
        ctx.current_utc_datetime += timedelta(seconds=1)


def describe(task: FakeTask) -> tuple:
    if task.children:
        return (task.kind, tuple(describe(c) for c in task.children))
    return (task.kind, task.name, json.dumps(task.input, sort_keys=True, default=str))
