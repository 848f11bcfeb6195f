"""The ticket workflow's decisions, stepped with a fake context (no sidecar), and its
determinism: the same history gives the same calls."""

from __future__ import annotations

import pytest

from app.workflows import ticket_workflow as wf_module
from app.workflows.ticket_workflow import ticket_workflow
from tests.unit.fake_workflow_context import FailedActivity, FakeTask, run_workflow, when_all, when_any

TICKET = {"ticket_id": "T-1", "customer_id": "CUST001", "description": "sidecar cannot reach app",
          "filed_at": "2026-11-23T12:00:00+00:00", "approval_timeout_seconds": 3600, "max_revisions": 2}
SLA_DUE = "2026-11-24T12:00:00+00:00"


@pytest.fixture(autouse=True)
def fake_composites(monkeypatch):
    monkeypatch.setattr(wf_module, "when_all", when_all)
    monkeypatch.setattr(wf_module, "when_any", when_any)


def triage(entitled=True):
    return {"ticket_id": "T-1", "customer_id": "CUST001", "customer_name": "Acme", "plan": "enterprise",
            "entitled": entitled, "entitlement_reason": "r", "category": "connectivity",
            "priority": "medium", "summary": "s", "system_info": None,
            "sla": {"first_response_target": "1 business day", "first_response_due": SLA_DUE} if entitled else None,
            "kb_queries": ["q1", "q2", "q3"]}


PROPOSAL = {"summary": "fix", "likely_causes": [], "steps": ["do it"], "cited_articles": ["app-port-mismatch"],
            "confidence": 0.8, "generated_by": "offline"}

CANCEL = "cancel"
SLA = "sla"


def responder(waits=(), entitled=True, notify_fails=False, cancel_at_step=None):
    """Scripts the workflow's world. `waits` answers each wait for a decision in turn: a decision
    dict, None (approval timeout), SLA (the SLA timer fires) or CANCEL. cancel_at_step cancels
    the ticket instead of finishing that step (an activity name)."""
    waits = list(waits)

    def activity_result(task: FakeTask):
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
        raise AssertionError(f"unexpected activity {task.name}")

    def respond(task: FakeTask):
        if task.kind == "activity":  # awaited without a cancellation race
            return activity_result(task)
        assert task.kind == "any", task
        first, cancel = task.children[0], task.children[2 if task.children[0].kind == "event" else 1]
        if first.kind in ("activity", "all"):
            name = first.children[0].name if first.kind == "all" else first.name
            if name == cancel_at_step:
                cancel.result = {"by": "tester-engineer", "reason": "duplicate"}
                return cancel
            first.result = ([[{"slug": "app-port-mismatch"}] for _ in first.children] if first.kind == "all"
                            else activity_result(first))
            return first
        answer = waits.pop(0)
        if answer is None:
            return task.children[1]
        if answer == SLA:
            return task.children[3]
        if answer == CANCEL:
            cancel.result = {"by": "tester-engineer", "reason": "customer solved it"}
            return cancel
        first.result = answer
        return first

    return respond


def names(calls):
    """Each step by name: an activity's name, 'all' for the fan-out, 'wait' for a decision wait."""
    out = []
    for call in calls:
        inner = call[1][0] if call[0] == "any" else call
        out.append({"activity": lambda c: c[1], "all": lambda c: "all", "event": lambda c: "wait"}[inner[0]](inner))
    return out


def fan_out(calls, n):
    """The n-th fan-out's search calls."""
    alls = [c[1][0] for c in calls if c[0] == "any" and c[1][0][0] == "all"]
    return alls[n][1]


def test_approved_ticket_runs_every_stage_in_order():
    output, calls, ctx = run_workflow(ticket_workflow, TICKET, responder([{"approved": True}]))
    assert names(calls) == ["triage_ticket", "all", "propose_solution", "wait", "notify_customer"]
    searches = fan_out(calls, 0)
    assert len(searches) == 3 and all(c[1] == "search_knowledge_base" for c in searches)
    assert output["stage"] == "completed"
    assert output["notification"]["kind"] == "resolved"
    assert [s["stage"] for s in ctx.statuses] == ["triage", "expert_analysis", "awaiting_approval",
                                                  "notifying", "completed"]
    assert ctx.statuses[2]["sla"]["first_response_due"] == SLA_DUE
    assert "1. do it" in output["final_solution"]


def test_engineer_text_replaces_the_proposal():
    decision = {"approved": True, "final_solution": "Restart with --app-port 8080."}
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder([decision]))
    assert output["final_solution"] == "Restart with --app-port 8080."
    assert '"solution": "Restart with --app-port 8080."' in calls[-1][1][0][2]


def test_not_entitled_customer_is_told_and_skips_the_expert():
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder(entitled=False))
    assert names(calls) == ["triage_ticket", "notify_customer"]
    assert output["stage"] == "not_entitled"
    assert '"kind": "not_entitled"' in calls[-1][1][0][2]


def test_timeout_escalates_and_tells_the_customer():
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder([None]))
    assert names(calls)[-2:] == ["escalate_ticket", "notify_customer"]
    assert '"reason": "approval_timeout"' in calls[-2][1][0][2]
    assert output["stage"] == "escalated" and output["notification"]["kind"] == "escalated"


def test_sla_breach_escalates_once_and_the_wait_goes_on():
    output, calls, ctx = run_workflow(ticket_workflow, TICKET, responder([SLA, {"approved": True}]))
    assert names(calls) == ["triage_ticket", "all", "propose_solution", "wait", "escalate_ticket", "wait",
                            "notify_customer"]
    assert '"reason": "sla_breach"' in calls[4][1][0][2]
    second_wait = calls[5][1]
    assert len(second_wait) == 3  # decision, timeout, cancel: no second SLA timer
    assert output["stage"] == "completed" and output["escalations"] == ["sla_breach"]
    assert ctx.statuses[-3]["escalations"] == ["sla_breach"]


def test_rejection_revises_with_the_notes_then_approval_completes():
    decisions = [{"approved": False, "support_notes": "check mTLS", "revision": 0},
                 {"approved": True, "revision": 1}]
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder(decisions))
    assert names(calls) == ["triage_ticket", "all", "propose_solution", "wait",
                            "all", "propose_solution", "wait", "notify_customer"]
    second = fan_out(calls, 1)
    assert len(second) == 4 and '"query": "check mTLS"' in second[-1][2]
    assert '"revision": 1' in calls[5][1][0][2]
    assert output["stage"] == "completed" and output["proposal"]["summary"] == "fix r1"


def test_too_many_rejections_escalate():
    decisions = [{"approved": False, "support_notes": f"n{i}", "revision": i} for i in range(3)]
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder(decisions))
    assert output["stage"] == "escalated"
    assert '"reason": "revisions_exhausted"' in calls[-2][1][0][2]
    assert names(calls).count("propose_solution") == 3  # the first proposal and MAX_REVISIONS=2


def test_decision_for_an_earlier_revision_is_dropped():
    decisions = [{"approved": True, "revision": 7}, {"approved": True, "revision": 0}]
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder(decisions))
    assert names(calls).count("wait") == 2
    assert output["stage"] == "completed"


def test_cancel_while_waiting_tells_the_customer():
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder([CANCEL]))
    assert names(calls)[-1] == "notify_customer" and calls[-1][0] == "activity"  # not cancellable
    assert output["stage"] == "cancelled" and output["cancellation"]["by"] == "tester-engineer"
    assert output["notification"]["kind"] == "cancelled"


def test_cancel_during_analysis_stops_before_the_proposal():
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder(cancel_at_step="search_knowledge_base"))
    assert names(calls) == ["triage_ticket", "all", "notify_customer"]
    assert output["stage"] == "cancelled"


def test_failing_llm_notification_falls_back_to_offline():
    output, calls, _ = run_workflow(ticket_workflow, TICKET, responder([{"approved": True}], notify_fails=True))
    assert names(calls)[-2:] == ["notify_customer", "notify_customer"]
    assert '"use_llm": false' in calls[-1][1][0][2]
    assert output["notification"]["generated_by"] == "offline"


@pytest.mark.parametrize("waits", [[{"approved": True}], [None], [SLA, CANCEL],
                                   [{"approved": False, "support_notes": "x", "revision": 0}, {"approved": True}]])
def test_replay_makes_the_same_calls(waits):
    first = run_workflow(ticket_workflow, TICKET, responder(waits))
    second = run_workflow(ticket_workflow, TICKET, responder(waits))
    assert first[1] == second[1]
    assert first[0] == second[0]
