"""The ticket workflow's decisions, stepped with a fake context (no sidecar), and its
determinism: the same history gives the same calls."""

from __future__ import annotations

import pytest

from app.workflows import ticket_workflow as wf_module
from app.workflows.ticket_workflow import ticket_workflow
from tests.unit.fake_workflow_context import FailedActivity, FakeTask, run_workflow, when_all, when_any

TICKET = {"ticket_id": "T-1", "customer_id": "CUST001", "description": "sidecar cannot reach app",
          "filed_at": "2026-11-23T12:00:00+00:00", "approval_timeout_seconds": 3600, "max_revisions": 2}


@pytest.fixture(autouse=True)
def fake_composites(monkeypatch):
    monkeypatch.setattr(wf_module, "when_all", when_all)
    monkeypatch.setattr(wf_module, "when_any", when_any)


def triage(entitled=True):
    return {"ticket_id": "T-1", "customer_id": "CUST001", "customer_name": "Acme", "plan": "enterprise",
            "entitled": entitled, "entitlement_reason": "r", "category": "connectivity",
            "priority": "medium", "summary": "s", "system_info": None,
            "sla": {"first_response_target": "1 business day", "first_response_due": "2026-11-24T12:00:00+00:00"},
            "kb_queries": ["q1", "q2", "q3"]}


PROPOSAL = {"summary": "fix", "likely_causes": [], "steps": ["do it"], "cited_articles": ["app-port-mismatch"],
            "confidence": 0.8, "generated_by": "offline"}


def responder(decisions=(), entitled=True, timeout_at=None, notify_fails=False):
    """Answers activities; the n-th when_any gets the n-th decision (None = timer fires)."""
    decisions = list(decisions)
    state = {"waits": 0}

    def respond(task: FakeTask):
        if task.kind == "activity":
            if task.name == "triage_ticket":
                return triage(entitled)
            if task.name == "propose_solution":
                return {**PROPOSAL, "summary": f"fix r{task.input['revision']}"}
            if task.name == "notify_customer":
                if notify_fails and task.input.get("use_llm", True):
                    return FailedActivity("model down")
                return {"kind": task.input["kind"], "generated_by": "offline" if notify_fails else "x"}
            if task.name == "escalate_ticket":
                return {"reason": task.input["reason"]}
        if task.kind == "all":
            return [[{"slug": "app-port-mismatch"}] for _ in task.children]
        if task.kind == "any":
            event, timer = task.children
            decision = decisions[state["waits"]] if state["waits"] < len(decisions) else None
            state["waits"] += 1
            if decision is None:
                return timer
            event.result = decision
            return event
        raise AssertionError(f"unexpected task {task}")

    return respond


def names(calls):
    return [c[1] if c[0] == "activity" else c[0] for c in calls]


def test_approved_ticket_runs_every_stage_in_order():
    output, calls, ctx = run_workflow(ticket_workflow, TICKET, responder([{"approved": True}]))
    assert names(calls) == ["triage_ticket", "all", "propose_solution", "any", "notify_customer"]
    fan_out = calls[1][1]
    assert len(fan_out) == 3 and all(c[1] == "search_knowledge_base" for c in fan_out)
    assert output["stage"] == "completed"
    assert output["notification"]["kind"] == "resolved"
    assert [s["stage"] for s in ctx.statuses] == ["triage", "expert_analysis", "awaiting_approval",
                                                  "notifying", "completed"]
    assert "1. do it" in output["final_solution"]


def test_engineer_text_replaces_the_proposal():
    decision = {"approved": True, "final_solution": "Restart with --app-port 8080."}
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder([decision]))
    assert output["final_solution"] == "Restart with --app-port 8080."
    assert '"solution": "Restart with --app-port 8080."' in calls[-1][2]


def test_not_entitled_customer_is_told_and_skips_the_expert():
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder(entitled=False))
    assert names(calls) == ["triage_ticket", "notify_customer"]
    assert output["stage"] == "not_entitled"
    assert '"kind": "not_entitled"' in calls[-1][2]


def test_timeout_escalates_and_tells_the_customer():
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder([None]))
    assert names(calls)[-2:] == ["escalate_ticket", "notify_customer"]
    assert '"reason": "approval_timeout"' in calls[-2][2]
    assert output["stage"] == "escalated" and output["notification"]["kind"] == "escalated"


def test_rejection_revises_with_the_notes_then_approval_completes():
    decisions = [{"approved": False, "support_notes": "check mTLS", "revision": 0},
                 {"approved": True, "revision": 1}]
    output, calls, ctx = run_workflow(ticket_workflow, TICKET, responder(decisions))
    assert names(calls) == ["triage_ticket", "all", "propose_solution", "any",
                            "all", "propose_solution", "any", "notify_customer"]
    second_fan_out = calls[4][1]
    assert len(second_fan_out) == 4 and '"query": "check mTLS"' in second_fan_out[-1][2]
    assert '"revision": 1' in calls[5][2]
    assert output["stage"] == "completed" and output["proposal"]["summary"] == "fix r1"


def test_too_many_rejections_escalate():
    decisions = [{"approved": False, "support_notes": f"n{i}", "revision": i} for i in range(3)]
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder(decisions))
    assert output["stage"] == "escalated"
    assert '"reason": "revisions_exhausted"' in calls[-2][2]
    assert names(calls).count("propose_solution") == 3  # the first proposal and MAX_REVISIONS=2


def test_decision_for_an_earlier_revision_is_dropped():
    decisions = [{"approved": True, "revision": 7}, {"approved": True, "revision": 0}]
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder(decisions))
    assert names(calls).count("any") == 2
    assert output["stage"] == "completed"


def test_failing_llm_notification_falls_back_to_offline():
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder([{"approved": True}], notify_fails=True))
    assert names(calls)[-2:] == ["notify_customer", "notify_customer"]
    assert '"use_llm": false' in calls[-1][2]
    assert output["notification"]["generated_by"] == "offline"


@pytest.mark.parametrize("decisions", [[{"approved": True}], [None],
                                       [{"approved": False, "support_notes": "x", "revision": 0}, {"approved": True}]])
def test_replay_makes_the_same_calls(decisions):
    first = run_workflow(ticket_workflow, TICKET, responder(decisions))
    second = run_workflow(ticket_workflow, TICKET, responder(decisions))
    assert first[1] == second[1]
    assert first[0] == second[0]
