"""A test build that reproduces, on demand, how daprd 1.18.1 wedges a workflow: the runtime hands
a turn to the worker and the answer never comes back, so the workflow's actor waits on it and holds
its lock, and every later call that needs that actor (a decision raised, a start, a cancel) runs
into its deadline until that sidecar restarts (seen under the replicas test's kills:
docs/benchmarks.md, "Runtime problems found"). Here a test arms it by creating the file
{WEDGE_MARKER_DIR}/{ticket id}.arm (holding the number of turns to let pass first, or nothing; and
"always" to hold every turn after those):
the worker's next turn of that ticket renames it (once) and holds the turn for WEDGE_HOLD_S
seconds without answering; every other turn, and every other
ticket, runs the released latest version unchanged.

Loaded with WORKFLOW_VERSIONS_MODULE=tests.support.workflow_wedged, to show that the sidecar
watchdog (app/core/sidecar_watchdog.py) restarts the sidecar and the ticket goes on."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.workflows import contracts as c
from app.workflows.runtime import TICKET_WORKFLOW_VERSIONS

WEDGED = "v5-wedged"
RELEASED = TICKET_WORKFLOW_VERSIONS[c.TICKET_WORKFLOW_LATEST]


def ticket_workflow_wedged(ctx, payload: dict):
    # Runs at the start of every turn (each replays from the top): the armed turn is the next one.
    markers = Path(os.environ.get("WEDGE_MARKER_DIR", "/tmp"))
    armed = markers / f"{payload.get('ticket_id', '')}.arm"
    if armed.exists():
        # The file may say how many turns to let pass first (a turn is one run of this function),
        # and then "always": every later turn is held, handed out again or not (a wedge that no
        # restart heals). "1 always" lets the first turn pass and holds every one after it.
        said = armed.read_text().split()
        let_pass = int(said[0]) if said and said[0].isdigit() else 0
        always = "always" in said
        if let_pass > 0:
            armed.write_text(" ".join([str(let_pass - 1), *(["always"] if always else [])]))
        elif always:
            armed.with_suffix(".wedged").touch()
            time.sleep(float(os.environ.get("WEDGE_HOLD_S", "600")))
        else:
            armed.rename(armed.with_suffix(".wedged"))  # once: the turn handed out again runs
            time.sleep(float(os.environ.get("WEDGE_HOLD_S", "600")))
    return (yield from RELEASED(ctx, payload))


VERSIONS = {WEDGED: ticket_workflow_wedged}
LATEST = WEDGED
