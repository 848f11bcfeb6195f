"""A running workflow whose last turn the runtime saved and whose answer it lost.

daprd 1.18.1 can save a workflow's turn (its start and the results it applied are in the history)
and then drop the worker's answer to it ("Ignoring complete task which no longer exists", seen in
the replicas test's kills: docs/benchmarks.md). The steps, timers or completion that answer held
are in no history, so nothing will give the workflow another turn, and no sidecar restart helps
(no turn is held; the held-turn check, app/core/held_turns.py, rightly sees it applied).

Any new event does: the worker replays the history and gives the lost answer again (the
activities it schedules are idempotent, keyed by ticket and step). `IdleWorkflowWake`, called by
the read model's sweep for each running ticket, replays the history of one that has not changed
for `after_s` through the current code (app/workflows/replay.py `unrecorded_commands`): commands
the history does not hold are a lost answer, and it raises `WAKE_EVENT` into the instance. No
workflow version waits for that event, so the SDK only buffers it; its one effect is the turn.
A workflow that waits on a step, a timer or an event issues nothing new and is left alone. An
instance still pending after `after_s` holds its start with nothing due to run it (daprd creates a
start's reminder before it saves the start, and a reminder that ran first is dropped): it is woken
too, and the wake's turn runs the start.

Thousands of tickets may wait for a decision for days, and a waiting workflow changes nothing
until something comes for it: one is read only once its instance has changed WAIT_SETTLED_S after
it began to wait (a decision whose turn was saved and whose answer was lost leaves it so, still
shown waiting). A decision's turn lost within WAIT_SETTLED_S of the wait's start is not told
from the wait's own last events without reading every waiting history; its approval timer, when
it fires, is the turn that gives the answer again (and an engineer who decides again gives one).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone

from app.services.operations import idle_seconds, parse_time
from app.services.workflow_gateway import Instance, WorkflowGateway, run_held_start

logger = logging.getLogger(__name__)

# Instances remembered at once; older ones are forgotten first.
MAX_TRACKED = 10_000
# A waiting workflow's own last events (its timers) are stamped just after the wait began.
WAIT_SETTLED_S = 5.0

# (instance id, its history) -> the commands a replay issues that the history does not hold.
UnrecordedCommands = Callable[[str, list], list[str]]


class IdleWorkflowWake:
    """For the sweep's running tickets: raises WAKE_EVENT into one whose workflow has not changed
    for `after_s` and whose replayed history issues commands the history does not hold, at most
    `max_wakes` times for one instance. Each instance is read once per change."""

    def __init__(self, workflows: WorkflowGateway, unrecorded: UnrecordedCommands, after_s: float,
                 max_wakes: int = 2, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.workflows, self.unrecorded, self.after_s, self.max_wakes = workflows, unrecorded, after_s, max_wakes
        self._now = now
        self._seen: OrderedDict[str, str] = OrderedDict()  # instance -> the change it was read at
        self._wakes: dict[str, int] = {}

    def __call__(self, row: dict, instance: Instance) -> bool:
        instance_id = instance.instance_id
        if instance.runtime_status not in ("running", "pending") or (
                row.get("awaiting_decision") and not changed_while_waiting(row, instance)):
            return False
        idle = idle_seconds(instance, self._now())
        changed = instance.last_updated_at or instance.created_at or ""
        if idle is None or idle < self.after_s or self._seen.get(instance_id) == changed:
            return False
        self._remember(instance_id, changed)
        wakes = self._wakes.get(instance_id, 0)
        if wakes >= self.max_wakes:  # woken as often as allowed: its history is not read again
            return False
        if instance.runtime_status == "pending":  # a filed ticket starts at once: `run_held_start`
            lost = ["start"]
        else:
            lost = self.unrecorded(instance_id, self.workflows.history(instance_id))
        if not lost:
            return False
        run_held_start(self.workflows, instance_id, {"idle_seconds": round(idle)})
        self._wakes[instance_id] = wakes + 1
        logger.warning("the runtime holds this workflow's start with nothing to run it: woke it with an event, "
                       "whose turn runs the start" if instance.runtime_status == "pending" else
                       "the runtime saved this workflow's last turn and lost its answer: woke it with an "
                       "event, so that it replays and answers again",
                       extra={"ticket_id": instance_id, "idle_seconds": round(idle), "wakes": wakes + 1,
                              "lost": [" ".join(command.split(" ", 2)[:2]) for command in lost]})  # no inputs
        return True

    def _remember(self, instance_id: str, changed: str) -> None:
        self._seen.pop(instance_id, None)
        self._seen[instance_id] = changed
        while len(self._seen) > MAX_TRACKED:
            forgotten, _ = self._seen.popitem(last=False)
            self._wakes.pop(forgotten, None)


def changed_while_waiting(row: dict, instance: Instance) -> bool:
    """Whether the instance changed after it began to wait for a decision (both times are the
    sidecar's: the wait's start is the workflow's clock in that turn)."""
    since, changed = parse_time(row.get("awaiting_since")), parse_time(instance.last_updated_at)
    return since is not None and changed is not None and (changed - since).total_seconds() > WAIT_SETTLED_S
