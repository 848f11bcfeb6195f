"""The ticket workflow with agents (LLM mode), stepped with a fake context: each agent runs as
a child workflow bound to the ticket, its answer is structured with the LLM retry policy, and
any failure falls back to the offline path, saying why."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from app.agents.runs import EXPERT_WORKFLOW, TRIAGE_WORKFLOW
from app.workflows import ticket_workflow as wf_module
from app.workflows.ticket_workflow import LLM_RETRY, ticket_workflow
from tests.unit.fake_workflow_context import (FailedActivity, FakeContext, FakeTask, run_workflow, when_all,
                                              when_any)

TICKET = {"ticket_id": "T-1", "customer_id": "CUST001", "description": "sidecar cannot reach app",
          "filed_at": "2026-11-23T12:00:00+00:00", "approval_timeout_seconds": 3600, "max_revisions": 2,
          "use_agents": True}
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
    """Records child workflows and the retry policy of each activity."""

    retry_policies: dict[str, list] = field(default_factory=dict)

    def call_activity(self, activity, *, input=None, retry_policy=None):
        self.retry_policies.setdefault(activity.__name__, []).append(retry_policy)
        return super().call_activity(activity, input=input, retry_policy=retry_policy)

    def call_child_workflow(self, workflow, *, input=None, instance_id=None, retry_policy=None):
        return FakeTask("child", workflow, {"instance_id": instance_id, "input": input})


def responder(decisions=({"approved": True},), entitled=True, failing=()):
    """Answers every step; `failing` names the steps (activity or child workflow) that fail."""
    decisions = list(decisions)

    def result(task: FakeTask):
        if task.name in failing:
            return FailedActivity(f"{task.name} failed")
        if task.kind == "all":
            return [[{"slug": "app-port-mismatch"}] for _ in task.children]
        if task.kind == "child":
            return {"role": "assistant", "content": f"answer of {task.input['instance_id']}"}
        return {
            "triage_ticket": lambda: {**OFFLINE_TRIAGE, "entitled": entitled},
            "structure_triage": lambda: AGENT_TRIAGE,
            "structure_expert": lambda: {"proposal": AGENT_PROPOSAL, "queries": ["a", "b", "c"],
                                         "search_results": [[], [], []]},
            "propose_solution": lambda: task.input["proposal"] or {**AGENT_PROPOSAL, "generated_by": "offline"},
            "notify_customer": lambda: {"kind": task.input["kind"]},
        }[task.name]()

    def respond(task: FakeTask):
        assert task.kind == "any", task  # every step races the cancellation
        first = task.children[0]
        if first.kind == "event":  # waiting for the engineer
            first.result = decisions.pop(0)
            return first
        first.result = result(first)
        return first

    return respond


def steps(calls):
    """Each step as (kind, name); a child workflow as (child, instance id)."""
    out = []
    for call in calls:
        kind, name, payload = call[1][0] if call[1][0][0] != "all" else ("all", "fan-out", "{}")
        out.append((kind, json.loads(payload)["instance_id"] if kind == "child" else name))
    return out


def payload(calls, name):
    return [json.loads(c[1][0][2]) for c in calls if c[1][0][0] != "all" and c[1][0][1] == name]


def run(ticket=TICKET, **kwargs):
    return run_workflow(ticket_workflow, ticket, responder(**kwargs), ctx=AgentsContext())


def test_both_agents_run_as_child_workflows_bound_to_the_ticket():
    output, calls, ctx = run()
    assert steps(calls) == [("activity", "triage_ticket"),
                            ("child", "T-1.triage"), ("activity", "structure_triage"),
                            ("child", "T-1.expert-0"), ("activity", "structure_expert"),
                            ("activity", "propose_solution"), ("event", "solution_approved"),
                            ("activity", "notify_customer")]
    [triage_run, expert_run] = [json.loads(c[1][0][2]) for c in calls if c[1][0][0] == "child"]
    assert [c[1][0][1] for c in calls if c[1][0][0] == "child"] == [TRIAGE_WORKFLOW, EXPERT_WORKFLOW]
    for child in (triage_run, expert_run):
        assert child["input"]["customer_id"] == "CUST001" and child["input"]["ticket_id"] == "T-1"
    assert "sidecar cannot reach app" in triage_run["input"]["task"]
    assert "priority high. agent summary" in expert_run["input"]["task"]
    assert output["triage"] == AGENT_TRIAGE and output["proposal"] == AGENT_PROPOSAL
    assert ctx.retry_policies["structure_triage"] == [LLM_RETRY]
    assert ctx.retry_policies["structure_expert"] == [LLM_RETRY]
    [stored] = payload(calls, "propose_solution")
    assert stored["proposal"] == AGENT_PROPOSAL and stored["queries"] == ["a", "b", "c"]
    assert [s["sla"] for s in ctx.statuses if s["stage"] == "awaiting_approval"] == [AGENT_TRIAGE["sla"]]


def test_structuring_gets_the_agents_final_answer():
    _, calls, _ = run()
    assert payload(calls, "structure_triage")[0]["answer"] == "answer of T-1.triage"
    [expert] = payload(calls, "structure_expert")
    assert (expert["run_id"], expert["answer"]) == ("T-1.expert-0", "answer of T-1.expert-0")
    assert expert["ticket"]["ticket_id"] == "T-1"


@pytest.mark.parametrize("failing", [TRIAGE_WORKFLOW, "structure_triage"])
def test_a_failed_triage_agent_keeps_the_offline_triage_and_says_why(failing):
    output, calls, _ = run(failing={failing})
    assert output["triage"] == {**OFFLINE_TRIAGE, "llm_fallback_reason": f"{failing} failed"}
    assert ("child", "T-1.expert-0") in steps(calls)  # the expert still runs


@pytest.mark.parametrize("failing", [EXPERT_WORKFLOW, "structure_expert"])
def test_a_failed_expert_agent_falls_back_to_the_offline_proposal_and_says_why(failing):
    output, calls, _ = run(failing={failing})
    assert ("all", "fan-out") in steps(calls)
    [stored] = payload(calls, "propose_solution")
    assert stored["proposal"] is None and stored["llm_fallback_reason"] == f"{failing} failed"
    assert stored["queries"] == ["q1", "q2", "q3"]
    assert output["proposal"]["generated_by"] == "offline"


def test_a_revision_runs_a_new_expert_with_the_engineers_notes():
    rejected = {"approved": False, "support_notes": "check health probes"}
    _, calls, _ = run(decisions=[rejected, {"approved": True}])
    experts = [json.loads(c[1][0][2]) for c in calls if c[1][0][0] == "child" and c[1][0][1] == EXPERT_WORKFLOW]
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
        if task.kind == "activity":  # the steps after a cancellation are not raced against it
            if task.name == "stop_agent_runs":
                return ["T-1.expert-0"]
            return {"kind": task.input["kind"]}
        first = task.children[0]
        if first.kind == "child" and first.name == EXPERT_WORKFLOW:  # cancelled while the expert runs
            cancel = task.children[1]
            cancel.result = {"by": "tester-engineer", "reason": "duplicate"}
            return cancel
        return answer(task)

    output, calls, _ = run_workflow(ticket_workflow, TICKET, respond, AgentsContext())
    assert calls[-2][:2] == ("activity", "stop_agent_runs")
    assert '"revisions": 3' in calls[-2][2] and '"ticket_id": "T-1"' in calls[-2][2]
    assert output["stage"] == "cancelled" and output["notification"]["kind"] == "cancelled"
