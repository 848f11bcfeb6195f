"""A test build that reproduces, on demand, how daprd 1.18.1 wedges a workflow: the runtime hands
a turn to the worker and the answer never comes back, so the workflow's actor waits on it and holds
its lock, and every later call that needs that actor (a decision raised, a start, a cancel) runs
into its deadline until that sidecar restarts (seen under the replicas test's kills:
docs/benchmarks.md, "Runtime problems found"). Here a test arms it by creating the file
{WEDGE_MARKER_DIR}/{ticket id}.arm (holding the number of turns to let pass first, or nothing; and
"always" to hold every turn after those): the worker's next turn of that ticket renames it (once)
and holds the turn for WEDGE_HOLD_S seconds without answering; every other turn, and every other
ticket, runs the released latest version unchanged.

With "lose" in the file instead, the next turn is answered with no command at all, once: the
runtime saves the turn (its results are in the history) and nothing is outstanding, as when daprd
1.18.1 saved a turn and dropped the worker's answer (the replicas test's kills).

A turn counts where the workflow goes on past its recorded history (the first step, timer or
completion it reaches with new events); the history's replay does nothing else, so the sweep's
own replay of an idle workflow (app/core/idle_workflow_wake.py) neither holds nor counts a turn.

Loaded with WORKFLOW_VERSIONS_MODULE=tests.support.workflow_wedged, to show that the sidecar
watchdog (app/core/sidecar_watchdog.py) restarts the sidecar, or that the sweep wakes a workflow
whose answer was lost, and the ticket goes on."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dapr.ext.workflow._durabletask import task as durabletask_task

from app.workflows import contracts as c
from app.workflows.runtime import TICKET_WORKFLOW_VERSIONS

WEDGED = "v5-wedged"
RELEASED = TICKET_WORKFLOW_VERSIONS[c.TICKET_WORKFLOW_LATEST]


def ticket_workflow_wedged(ctx, payload: dict):
    armed = Path(os.environ.get("WEDGE_MARKER_DIR", "/tmp")) / f"{payload.get('ticket_id', '')}.arm"
    released, inner = RELEASED(ctx, payload), ctx._DaprWorkflowContext__obj
    send, value, counted = released.send, None, False
    while True:
        status_before = inner._encoded_custom_status
        try:
            task, finished = send(value), None
        except StopIteration as done:
            task, finished = None, done
        if not counted and not ctx.is_replaying:
            counted = True  # this run is a turn that goes on
            if arm_for_this_turn(armed) == "lose":
                # The answer, as the runtime lost it: no command, and the status it had before.
                inner._pending_actions.clear()
                inner._encoded_custom_status = status_before
                yield durabletask_task.CompletableTask()  # never completes: the turn ends with no command
        if finished is not None:
            return finished.value
        try:
            value, send = (yield task), released.send
        except Exception as error:  # noqa: BLE001 - the released workflow's own failure path
            value, send = error, released.throw


def arm_for_this_turn(armed: Path) -> str | None:
    """What the marker asks of this turn: nothing (None), hold it (done here), or "lose" its answer.
    The file may say how many turns to let pass first, and then "always" (every later turn is
    held, handed out again or not: a wedge no restart heals) or "lose"."""
    if not armed.exists():
        return None
    said = armed.read_text().split()
    let_pass = int(said[0]) if said and said[0].isdigit() else 0
    if let_pass > 0:
        armed.write_text(" ".join([str(let_pass - 1), *[word for word in said if not word.isdigit()]]))
        return None
    if "lose" in said:
        armed.rename(armed.with_suffix(".lost"))
        return "lose"
    if "always" in said:
        armed.with_suffix(".wedged").touch()
    else:
        armed.rename(armed.with_suffix(".wedged"))  # once: the turn handed out again runs
    time.sleep(float(os.environ.get("WEDGE_HOLD_S", "600")))
    return "hold"


VERSIONS = {WEDGED: ticket_workflow_wedged}
LATEST = WEDGED
