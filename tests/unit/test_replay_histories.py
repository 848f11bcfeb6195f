"""Recorded histories of real tickets (captured from the runtime's GetInstanceHistory by
scripts/record_histories.py, one file per path, per released version) replay against the current
code through the SDK's own replay machinery: the same commands, batch by batch. A change that
breaks an instance in flight fails here with the instance, the version and the first event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dapr.ext.workflow import WorkflowRuntime

from app.workflows.replay import history_from_json, replay, version_of
from app.workflows.runtime import TICKET_WORKFLOW_VERSIONS, register_ticket_workflows
from app.workflows.ticket_workflow import ticket_workflow_v1

HISTORIES = sorted((Path(__file__).resolve().parents[1] / "histories").glob("*/*.json"))


def load(path: Path):
    recorded = json.loads(path.read_text())
    return recorded["instance_id"], history_from_json(recorded["events"])


def current_runtime() -> WorkflowRuntime:
    runtime = WorkflowRuntime()
    register_ticket_workflows(runtime)
    return runtime


def test_histories_are_recorded_for_every_path():
    paths = {p.stem for p in HISTORIES}
    assert {"approve", "approve_edited", "reject_revise", "approval_timeout", "sla_escalation", "cancel",
            "not_entitled", "system_error", "dropped_event", "out_of_scope", "agent_approve", "agent_fallback",
            "outage_wait"} <= paths


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_recorded_history_replays_against_the_current_code(path):
    instance_id, events = load(path)
    assert version_of(events) == path.parent.name
    mismatch = replay(current_runtime(), instance_id, events)
    assert mismatch is None, str(mismatch)


def broken_v1(ctx, payload):
    """v1 with one step added before triage, shipped without a new version."""
    yield ctx.call_activity("search_knowledge_base", input={"ticket_id": payload["ticket_id"], "query": "x"})
    return (yield from ticket_workflow_v1(ctx, payload))


def test_a_breaking_change_without_a_new_version_is_caught():
    runtime = WorkflowRuntime()
    register_ticket_workflows(runtime, {"v1": broken_v1}, latest="v1")
    path = next(p for p in HISTORIES if p.stem == "reject_revise")
    instance_id, events = load(path)
    mismatch = replay(runtime, instance_id, events)
    assert mismatch is not None
    assert mismatch.instance_id == instance_id and mismatch.version == "v1"
    assert "search_knowledge_base" in mismatch.actual and "search_knowledge_base" not in mismatch.expected
    assert f"history event {mismatch.event_index}" in str(mismatch)


def test_the_same_change_as_a_new_version_keeps_old_instances_on_theirs():
    runtime = WorkflowRuntime()
    register_ticket_workflows(runtime, {**TICKET_WORKFLOW_VERSIONS, "next": broken_v1}, latest="next")
    for path in HISTORIES:
        instance_id, events = load(path)
        assert replay(runtime, instance_id, events) is None, path


def test_no_recorded_history_looks_like_the_runtime_recorded_a_step_twice():
    from app.services.operations import render_history, step_recorded_twice

    for path in HISTORIES:
        assert step_recorded_twice(render_history(load(path)[1])) is None, path.name
    # The fault as daprd 1.18.1 left it: a turn schedules the notification's delivery, and the
    # next turn schedules it again with no result between (the two answers to one turn).
    _, events = load(next(p for p in HISTORIES if p.parent.name == "v2" and p.stem == "approve"))
    rendered = render_history(events)
    scheduled = next(i for i, e in enumerate(rendered) if e.get("name") == "deliver_notification"
                     and e["kind"] == "taskScheduled")
    turn = next(e for e in rendered if e["kind"] == "workflowStarted")
    twice = rendered[:scheduled + 1] + [turn, rendered[scheduled]]
    assert step_recorded_twice(twice) == "deliver_notification"


def test_code_that_no_longer_reads_a_recorded_patch_is_caught_as_the_runtime_would_stall_it(monkeypatch):
    # daprd stalls an instance whose code reports fewer patches than its history recorded (as the
    # SDK does when it applies a buffered event before the turn that recorded the patch).
    from app.workflows import contracts as c
    from app.workflows import ticket_workflow as wf

    path = next(p for p in HISTORIES if p.parent.name == "v4" and p.stem == "outage_wait")
    instance_id, events = load(path)
    assert replay(current_runtime(), instance_id, events) is None
    monkeypatch.setattr(wf.TicketRun, "rides_out", lambda self, error, waited: (
        error.details.error_type == c.DEPENDENCY_UNAVAILABLE and waited < wf.OUTAGE_HORIZON))
    mismatch = replay(current_runtime(), instance_id, events)
    assert mismatch is not None and "ride-out-outages" in mismatch.expected and "stall" in mismatch.actual
