"""The benchmark's floor must issue the ticket workflow's commands, turn by turn, or its ratio
compares the service with some other workflow. The latest version's recorded approved path
(which tests/unit/test_replay_histories.py replays against the current code) is the reference."""

from __future__ import annotations

import json
from pathlib import Path

from app.workflows.contracts import TICKET_WORKFLOW_LATEST
from app.workflows.replay import history_from_json
from benchmarks.floor_app import TICKET_SHAPE, command_shape

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


def recorded(path: str):
    return history_from_json(json.loads((HISTORIES / path).read_text())["events"])


def test_the_floor_issues_the_latest_workflows_approved_path():
    assert command_shape(recorded(f"{TICKET_WORKFLOW_LATEST}/approve.json")) == TICKET_SHAPE


def test_the_shape_tells_timers_from_awaited_events_and_counts_parallel_steps():
    # v1 recorded its progress in steps of their own (15 turns against 9): a shape blind to
    # that difference would pass any floor.
    v1 = command_shape(recorded("v1/approve.json"))
    assert v1 != TICKET_SHAPE
    assert ("activity",) * 3 in v1
    assert all(kind in ("activity", "timer", "event") for turn in v1 for kind in turn)
