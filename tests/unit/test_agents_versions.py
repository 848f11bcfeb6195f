"""The agents' workflows are registered as named versions (app/agents/versions.py): the real
agents, built and registered by `register_agents` with a dummy chat client and no sidecar, hold
their workflow names as version a1, the latest, and no plain registration that would hide it. A
run started by name (as the ticket workflow starts it) takes a1 and records it, and a run
recorded before the agents were versioned replays and carries on, through the SDK's own
replayer."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from dapr.ext.workflow import WorkflowRuntime
from dapr.ext.workflow._durabletask import worker as durabletask_worker
from dapr.ext.workflow._durabletask.internal import helpers as ph, protos as pb

from app.agents import registry
from app.agents.runs import EXPERT_WORKFLOW, TRIAGE_WORKFLOW
from app.agents.versions import AGENT_WORKFLOW_LATEST, register_versioned
from app.workflows.replay import replay, version_of

RUN_ID = "T-1.triage"
RUN_INPUT = {"task": "Triage support ticket T-1.", "ticket_id": "T-1", "customer_id": "CUST001"}
STARTED = datetime(2026, 11, 23, 12, 0, 0)
TOOL_CALL = {"id": "call-1", "type": "function", "function": {"name": "lookup_customer", "arguments": "{}"}}


class NoSidecar:
    """The DaprClient a DurableAgent reads the sidecar's metadata with, at build: no components."""

    def __init__(self, **_):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def get_metadata(self):
        return SimpleNamespace(application_id="unit", registered_components=[])


@pytest.fixture
def agents(monkeypatch):
    import dapr_agents.agents.base as agent_base
    from dapr_agents import OpenAIChatClient

    from app.agents import chat_client

    monkeypatch.setattr(agent_base, "DaprClient", NoSidecar)
    llm = OpenAIChatClient(model="unit", api_key="unit", base_url="http://127.0.0.1:9")  # never called
    monkeypatch.setattr(chat_client, "chat_client", lambda: llm)
    monkeypatch.setattr(registry, "_agents", None)

    def build(runtime: WorkflowRuntime):
        return registry.register_agents(runtime)

    return build


def registry_of(runtime: WorkflowRuntime):
    return runtime._WorkflowRuntime__worker._registry


def versioned_runtime(agents) -> WorkflowRuntime:
    runtime = WorkflowRuntime()
    agents(runtime)
    return runtime


def unversioned_runtime(agents) -> WorkflowRuntime:
    """The agents registered as dapr-agents registers them (as they were before versions)."""
    from dapr_agents import DurableAgent

    runtime = WorkflowRuntime()
    built = agents(WorkflowRuntime())
    for agent in (built.triage, built.expert):
        DurableAgent.register_workflows(agent, runtime)
    return runtime


def test_each_agent_workflow_is_registered_as_version_a1_the_latest(agents):
    reg = registry_of(versioned_runtime(agents))
    assert AGENT_WORKFLOW_LATEST == "a1"
    for name in (TRIAGE_WORKFLOW, EXPERT_WORKFLOW):
        assert list(reg.versioned_orchestrators[name]) == ["a1"]
        assert reg.latest_versioned_orchestrators_version_name[name] == "a1"
        # A plain registration of the name would be found first and hide every version.
        assert name not in reg.orchestrators
    assert reg.orchestrators == {}


def test_the_activities_stay_registered_as_dapr_agents_registers_them(agents):
    versioned, plain = registry_of(versioned_runtime(agents)), registry_of(unversioned_runtime(agents))
    assert set(versioned.activities) == set(plain.activities)
    for agent in ("ticket-triage", "ticket-expert"):
        for method in ("record_initial_entry", "call_llm", "run_tool", "save_tool_results", "summarize",
                       "finalize_workflow"):
            assert f"dapr.agents.{agent}.{method}" in versioned.activities


def activity_result(name: str, encoded_input: str) -> str:
    """Each activity's answer, from its input: the first LLM turn asks for a tool, the next answers."""
    method = name.rsplit(".", 1)[1]
    if method == "call_llm" and json.loads(encoded_input)["turn"] == 1:
        result = {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]}
    elif method == "call_llm":
        result = {"role": "assistant", "content": "category connectivity, priority high"}
    elif method == "run_tool":
        result = {"role": "tool", "name": "lookup_customer", "tool_call_id": "call-1", "content": "{}"}
    else:
        result = None
    return json.dumps(result)


def answered(scheduled: list) -> list:
    return [ph.new_task_completed_event(e.eventId, activity_result(e.taskScheduled.name, e.taskScheduled.input.value))
            for e in scheduled]


def record(runtime: WorkflowRuntime, events: list | None = None, batches: int = 100) -> list:
    """Runs an agent run on `runtime` as daprd would, for up to `batches` more batches, each
    activity answered at once: the history daprd records."""
    executor = durabletask_worker._OrchestrationExecutor(registry_of(runtime), logging.getLogger("unit"))
    events = list(events or [])
    if events:  # carry on: the results of the last batch's commands arrive
        last = max(i for i, e in enumerate(events) if e.HasField("workflowStarted"))
        new = [ph.new_workflow_started_event(STARTED + timedelta(seconds=len(events))),
               *answered([e for e in events[last:] if e.HasField("taskScheduled")])]
    else:
        new = [ph.new_workflow_started_event(STARTED),
               ph.new_execution_started_event(TRIAGE_WORKFLOW, RUN_ID, json.dumps(RUN_INPUT))]
    for _ in range(batches):
        result = executor.execute(RUN_ID, events, new)
        if result.version_name:  # daprd records the worker's answered version on the batch's start
            new[0].workflowStarted.version.name = result.version_name
        events += new
        scheduled = []
        for action in sorted(result.actions, key=lambda a: a.id):
            if action.HasField("scheduleTask"):
                task = action.scheduleTask
                scheduled.append(ph.new_task_scheduled_event(action.id, task.name, task.input.value))
            elif action.HasField("completeWorkflow"):
                done = action.completeWorkflow
                events.append(pb.HistoryEvent(eventId=action.id, executionCompleted=pb.ExecutionCompletedEvent(
                    workflowStatus=done.workflowStatus, result=done.result, failureDetails=done.failureDetails)))
                return events
            else:
                raise AssertionError(f"unexpected command {action}")
        events += scheduled
        new = [ph.new_workflow_started_event(STARTED + timedelta(seconds=len(events))), *answered(scheduled)]
    return events


def commands(events) -> list[str]:
    return [e.taskScheduled.name.rsplit(".", 1)[1] for e in events if e.HasField("taskScheduled")]


def completed(events) -> pb.ExecutionCompletedEvent | None:
    return next((e.executionCompleted for e in events if e.HasField("executionCompleted")), None)


def test_a_run_started_by_name_takes_the_latest_version_and_records_it(agents):
    # The ticket workflow's child workflow action names the workflow only, no version.
    events = record(versioned_runtime(agents), batches=1)
    assert commands(events) == ["record_initial_entry"]
    assert version_of(events) == "a1"
    events = record(versioned_runtime(agents), events)
    assert commands(events) == ["record_initial_entry", "call_llm", "run_tool", "save_tool_results",
                                "call_llm", "summarize", "finalize_workflow"]
    done = completed(events)
    assert done.workflowStatus == pb.ORCHESTRATION_STATUS_COMPLETED
    assert json.loads(done.result.value)["content"] == "category connectivity, priority high"
    assert {e.workflowStarted.version.name for e in events if e.HasField("workflowStarted")} == {"a1"}
    assert replay(versioned_runtime(agents), RUN_ID, events) is None


def test_a_run_started_before_the_versions_replays_and_carries_on(agents):
    before = record(unversioned_runtime(agents), batches=3)  # in flight at the upgrade: tool call pending
    assert commands(before) == ["record_initial_entry", "call_llm", "run_tool"]
    assert version_of(before) is None
    assert replay(versioned_runtime(agents), RUN_ID, before) is None

    after = record(versioned_runtime(agents), before)
    assert commands(after) == ["record_initial_entry", "call_llm", "run_tool", "save_tool_results",
                               "call_llm", "summarize", "finalize_workflow"]
    assert completed(after).workflowStatus == pb.ORCHESTRATION_STATUS_COMPLETED
    # Its first batch still names no version (so it replays on the latest); later ones name a1.
    started = [e.workflowStarted.version.name for e in after if e.HasField("workflowStarted")]
    assert started[:3] == ["", "", ""] and set(started[3:]) == {"a1"}
    assert replay(versioned_runtime(agents), RUN_ID, after) is None


def test_a_run_on_a_version_no_longer_registered_stalls(agents):
    events = record(versioned_runtime(agents), batches=1)
    events[0].workflowStarted.version.name = "a0"
    executor = durabletask_worker._OrchestrationExecutor(registry_of(versioned_runtime(agents)),
                                                         logging.getLogger("unit"))
    result = executor.execute(RUN_ID, events[:2], [ph.new_workflow_started_event(STARTED)])
    # daprd holds the run STALLED on this action until a worker that has a0 takes it.
    assert [a.WhichOneof("workflowActionType") for a in result.actions] == ["workflowVersionNotAvailable"]


class FakeRuntime:
    def __init__(self):
        self.calls = []

    def register_workflow(self, fn, *, name=None):
        self.calls.append(("plain", name or fn.__name__))

    def register_versioned_workflow(self, fn, *, name, version_name, is_latest):
        self.calls.append(("versioned", name, version_name, is_latest))

    def register_activity(self, fn, *, name=None):
        self.calls.append(("activity", name or fn.__name__))


def named(name):
    def fn(ctx, payload):
        return None

    fn.__name__ = name
    return fn


def test_only_the_agents_workflow_is_versioned_every_other_registration_passes_through():
    runtime = FakeRuntime()

    def register_workflows(rt):
        rt.register_workflow(named("dapr.agents.x.workflow"))
        rt.register_workflow(named("dapr.agents.x.broadcast"))
        rt.register_activity(named("dapr.agents.x.call_llm"))

    register_versioned(register_workflows, runtime, "dapr.agents.x.workflow")
    assert runtime.calls == [("versioned", "dapr.agents.x.workflow", "a1", True),
                             ("plain", "dapr.agents.x.broadcast"),
                             ("activity", "dapr.agents.x.call_llm")]


def test_a_registration_that_never_registers_the_agents_workflow_fails_at_startup():
    with pytest.raises(RuntimeError, match="did not register its workflow 'dapr.agents.x.workflow'"):
        register_versioned(lambda rt: rt.register_workflow(named("dapr.agents.y.workflow")), FakeRuntime(),
                           "dapr.agents.x.workflow")
