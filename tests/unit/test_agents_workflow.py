"""The ticket workflow with agents (LLM mode), stepped with a fake context: each agent runs as
a child workflow bound to the ticket and raced against a deadline, its answer is structured with
the LLM retry policy, and any failure or overrun falls back to the offline path, saying why."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from app.workflows import ticket_workflow as wf_module
from app.workflows.contracts import EXPERT_AGENT_WORKFLOW, TRIAGE_AGENT_WORKFLOW
from app.workflows.ticket_workflow import LLM_RETRY, ticket_workflow_v1 as ticket_workflow
from tests.unit.fake_workflow_context import FailedActivity, FakeContext, FakeTask, run_workflow, when_all, when_any
from tests.unit.test_ticket_workflow import activity_result, decision, inputs

TICKET = {"ticket_id": "T-1", "customer_id": "CUST001", "description": "sidecar cannot reach app",
          "filed_at": "2026-11-23T12:00:00+00:00", "approval_timeout_seconds": 3600, "max_revisions": 2,
          "use_agents": True, "agent_timeout_seconds": 300}
SLA = {"first_response_target": "1 h", "first_response_due": "2026-11-23T13:00:00+00:00"}
OFFLINE_TRIAGE = {"ticket_id": "T-1", "customer_id": "CUST001", "customer_name": "Acme", "plan": "enterprise",
                  "entitled": True, "entitlement_reason": "r", "category": "connectivity", "priority": "critical",
                  "summary": "s", "system_info": None, "sla": SLA, "kb_queries": ["q1", "q2", "q3"],
                  "generated_by": "offline"}
AGENT_TRIAGE = {**OFFLINE_TRIAGE, "priority": "high", "summary": "agent summary", "generated_by": "llm",
                "sla": {"first_response_target": "4 h", "first_response_due": "2026-11-23T16:00:00+00:00"}}
AGENT_PROPOSAL = {"summary": "agent fix", "likely_causes": [], "steps": ["do it"],
                  "cited_articles": ["app-port-mismatch"], "confidence": 0.7, "generated_by": "llm"}


@pytest.fixture(autouse=True)
def fake_composites(monkeypatch):
    monkeypatch.setattr(wf_module, "when_all", when_all)
    monkeypatch.setattr(wf_module, "when_any", when_any)


@dataclass
class AgentsContext(FakeContext):
    """Records the retry policy of each activity."""

    retry_policies: dict[str, list] = field(default_factory=dict)

    def call_activity(self, activity, *, input=None, retry_policy=None):
        self.retry_policies.setdefault(activity, []).append(retry_policy)
        return super().call_activity(activity, input=input, retry_policy=retry_policy)


def responder(decisions=None, entitled=True, failing=(), overrun=()):
    """Answers every step; `failing` names the steps (activity or child workflow) that fail,
    `overrun` the child workflows whose deadline fires first."""
    decisions = list(decisions or [decision()])

    def result(task: FakeTask):
        if task.name in failing:
            return FailedActivity(f"{task.name} failed")
        if task.kind == "all":
            return [{"hits": [{"slug": "app-port-mismatch"}]} for _ in task.children]
        if task.kind == "child":
            return {"role": "assistant", "content": f"answer of {task.input['instance_id']}"}
        if task.name == "triage_ticket":
            return {**OFFLINE_TRIAGE, "entitled": entitled}
        if task.name == "structure_triage":
            return AGENT_TRIAGE
        if task.name == "structure_expert":
            return {"proposal": AGENT_PROPOSAL, "queries": ["a", "b", "c"], "search_results": [[], [], []]}
        if task.name == "propose_solution":
            return task.input["proposal"] or {**AGENT_PROPOSAL, "generated_by": "offline"}
        return activity_result(task)

    def respond(task: FakeTask):
        if task.kind == "activity":
            return result(task)
        first = task.children[0]
        if first.kind == "event":  # waiting for the engineer
            first.result = decisions.pop(0)
            return first
        if first.kind == "child" and first.name in overrun:
            return task.children[1]  # the run's deadline
        first.result = result(first)
        return first

    return respond


def steps(calls):
    """Each step as (kind, name); a child workflow as (child, instance id); no bookkeeping."""
    out = []
    for call in calls:
        inner = call[1][0] if call[0] == "any" else call
        kind = inner[0]
        if kind == "all":
            out.append(("all", "fan-out"))
        elif kind == "child":
            out.append(("child", json.loads(inner[2])["instance_id"]))
        elif inner[1] not in ("record_progress", "deliver_notification", "index_resolved_case"):
            out.append((kind, inner[1]))
    return out


def children(calls):
    return [json.loads(c[1][0][2]) for c in calls if c[0] == "any" and c[1][0][0] == "child"]


def run(ticket=TICKET, **kwargs):
    return run_workflow(ticket_workflow, ticket, responder(**kwargs), ctx=AgentsContext())


def test_both_agents_run_as_child_workflows_bound_to_the_ticket():
    output, calls, ctx = run()
    assert steps(calls) == [("activity", "triage_ticket"),
                            ("child", "T-1.triage"), ("activity", "structure_triage"),
                            ("child", "T-1.expert-0"), ("activity", "structure_expert"),
                            ("activity", "propose_solution"), ("event", "solution_approved"),
                            ("activity", "notify_customer")]
    assert [c[1][0][1] for c in calls if c[0] == "any" and c[1][0][0] == "child"] == [
        TRIAGE_AGENT_WORKFLOW, EXPERT_AGENT_WORKFLOW]
    triage_run, expert_run = children(calls)
    for child in (triage_run, expert_run):
        assert child["input"]["customer_id"] == "CUST001" and child["input"]["ticket_id"] == "T-1"
    assert "sidecar cannot reach app" in triage_run["input"]["task"]
    assert "priority high. agent summary" in expert_run["input"]["task"]
    assert output["triage"]["summary"] == "agent summary" and output["proposal"]["summary"] == "agent fix"
    assert ctx.retry_policies["structure_triage"] == [LLM_RETRY]
    assert ctx.retry_policies["structure_expert"] == [LLM_RETRY]
    [stored] = inputs(calls, "propose_solution")
    assert stored["proposal"]["summary"] == "agent fix" and stored["queries"] == ["a", "b", "c"]
    assert {s.get("sla_due") for s in ctx.statuses if s["stage"] == "awaiting_approval"} == {
        AGENT_TRIAGE["sla"]["first_response_due"]}


def test_every_agent_run_is_raced_against_its_deadline_and_the_cancellation():
    _, calls, _ = run()
    races = [c[1] for c in calls if c[0] == "any" and c[1][0][0] == "child"]
    for race in races:
        assert [t[0] for t in race] == ["child", "timer", "event"]
        fire_at = datetime.fromisoformat(json.loads(race[1][2]))
        assert datetime(2026, 11, 23, 12, 5) <= fire_at < datetime(2026, 11, 23, 12, 6)  # 300 s after start


def test_structuring_gets_the_agents_final_answer():
    _, calls, _ = run()
    assert inputs(calls, "structure_triage")[0]["answer"] == "answer of T-1.triage"
    [expert] = inputs(calls, "structure_expert")
    assert (expert["run_id"], expert["answer"]) == ("T-1.expert-0", "answer of T-1.expert-0")
    assert expert["ticket"]["ticket_id"] == "T-1"


@pytest.mark.parametrize("failing", [TRIAGE_AGENT_WORKFLOW, "structure_triage"])
def test_a_failed_triage_agent_keeps_the_offline_triage_and_says_why(failing):
    output, calls, _ = run(failing={failing})
    assert output["triage"]["priority"] == "critical" and output["triage"]["generated_by"] == "offline"
    assert output["triage"]["llm_fallback_reason"] == f"{failing} failed"
    assert ("child", "T-1.expert-0") in steps(calls)  # the expert still runs


@pytest.mark.parametrize("failing", [EXPERT_AGENT_WORKFLOW, "structure_expert"])
def test_a_failed_expert_agent_falls_back_to_the_offline_proposal_and_says_why(failing):
    output, calls, _ = run(failing={failing})
    assert ("all", "fan-out") in steps(calls)
    [stored] = inputs(calls, "propose_solution")
    assert stored["proposal"] is None and stored["llm_fallback_reason"] == f"{failing} failed"
    assert stored["queries"] == ["q1", "q2", "q3"]
    assert output["proposal"]["generated_by"] == "offline"


def test_an_agent_run_that_overruns_is_stopped_and_the_ticket_goes_on_offline():
    output, calls, _ = run(overrun={EXPERT_AGENT_WORKFLOW})
    names = steps(calls)
    assert names.index(("activity", "stop_agent_runs")) < names.index(("all", "fan-out"))
    [stored] = inputs(calls, "propose_solution")
    assert "took longer than 300s" in stored["llm_fallback_reason"]
    assert output["stage"] == "completed"


def test_a_revision_runs_a_new_expert_with_the_engineers_notes():
    _, calls, _ = run(decisions=[decision(False, 0, support_notes="check health probes"), decision(True, 1)])
    experts = [c for c in children(calls) if ".expert-" in c["instance_id"]]
    assert [e["instance_id"] for e in experts] == ["T-1.expert-0", "T-1.expert-1"]
    assert "check health probes" in experts[1]["input"]["task"] and "NOTES" not in experts[0]["input"]["task"]


def test_a_ticket_the_plan_excludes_costs_no_model_time():
    output, calls, _ = run(entitled=False)
    assert steps(calls) == [("activity", "triage_ticket"), ("activity", "notify_customer")]
    assert output["stage"] == "not_entitled"


def test_without_agents_the_workflow_stays_offline():
    _, calls, _ = run(ticket={**TICKET, "use_agents": False})
    assert [s for s in steps(calls) if s[0] == "child" or s[1].startswith("structure")] == []
    assert ("all", "fan-out") in steps(calls)


def test_cancelling_a_ticket_stops_its_agent_runs():
    answer = responder()

    def respond(task: FakeTask):
        if task.kind == "any" and task.children[0].kind == "child" and task.children[0].name == EXPERT_AGENT_WORKFLOW:
            cancel = task.children[2]  # cancelled while the expert runs
            cancel.result = {"by": "tester-engineer", "reason": "duplicate"}
            return cancel
        return answer(task)

    output, calls, _ = run_workflow(ticket_workflow, TICKET, respond, AgentsContext())
    [stop] = inputs(calls, "stop_agent_runs")
    assert stop == {"ticket_id": "T-1", "revisions": 1}
    assert steps(calls).index(("activity", "stop_agent_runs")) < steps(calls).index(("activity", "notify_customer"))
    assert output["stage"] == "cancelled" and output["notification"]["kind"] == "cancelled"
