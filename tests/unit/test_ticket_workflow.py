"""The ticket workflow's decisions, stepped with a fake context (no sidecar): every path, what it
records, that no failing step ends the ticket in silence, and that malformed events never fail it."""

from __future__ import annotations

import json

import pytest

from app.workflows import ticket_workflow as wf_module
from app.workflows.contracts import DEPENDENCY_UNAVAILABLE, PATCH_RIDE_OUT_OUTAGES, PROGRESS_FIELD, ProposeRequest
from app.workflows.ticket_workflow import ticket_workflow_v1, ticket_workflow_v2, ticket_workflow_v3, ticket_workflow_v4
from tests.unit.fake_workflow_context import FailedActivity, FakeTask, run_workflow, when_all, when_any

TICKET = {"ticket_id": "T-1", "customer_id": "CUST001", "description": "sidecar cannot reach app",
          "filed_at": "2026-11-23T12:00:00+00:00", "approval_timeout_seconds": 3600, "max_revisions": 2,
          "filed_by": "tester"}
SLA_DUE = "2026-11-24T12:00:00+00:00"


# Every test runs against each released version: v1 records each transition as a step of its
# own, v2 carries records on the next step's input (the same records, some merged), v3 also
# passes the proposal and the notification by reference to their records, v4 also tells the
# propose step only its subject.
WORKFLOWS = {"v1": ticket_workflow_v1, "v2": ticket_workflow_v2, "v3": ticket_workflow_v3, "v4": ticket_workflow_v4}
BY_REFERENCE = ("v3", "v4")
VERSION = ["v1"]


@pytest.fixture(autouse=True, params=sorted(WORKFLOWS))
def version(request):
    VERSION[0] = request.param
    return request.param


@pytest.fixture(autouse=True)
def fake_composites(monkeypatch):
    monkeypatch.setattr(wf_module, "when_all", when_all)
    monkeypatch.setattr(wf_module, "when_any", when_any)


def triage(entitled=True, in_scope=True):
    return {"ticket_id": "T-1", "customer_id": "CUST001", "customer_name": "Acme", "plan": "enterprise",
            "entitled": entitled, "entitlement_reason": "r", "category": "connectivity",
            "priority": "medium", "summary": "s", "system_info": None, "in_scope": in_scope,
            "scope_reason": None if in_scope else "no article covers billing",
            "sla": {"first_response_target": "1 business day", "first_response_due": SLA_DUE} if entitled else None,
            "kb_queries": ["q1", "q2", "q3"]}


PROPOSAL = {"summary": "fix", "likely_causes": [], "steps": ["do it"], "cited_articles": ["app-port-mismatch"],
            "confidence": 0.8, "generated_by": "offline"}

CANCEL = "cancel"
SLA = "sla"


def decision(approved=True, revision=0, **extra):
    return {"approved": approved, "revision": revision, "decision_id": f"d-{revision}-{approved}",
            "approver": "tester-engineer", **extra}


def activity_result(task: FakeTask, entitled=True, in_scope=True, failing=(), notify_fails=False, no_address=False,
                    uncertain=False, outages=None):
    if task.name in failing:
        return FailedActivity(f"{task.name} broke")
    if outages and outages.get(task.name, 0) > 0:  # fails this many more times, unreachable
        outages[task.name] -= 1
        return FailedActivity("error when publishing: dial tcp: connection refused", DEPENDENCY_UNAVAILABLE)
    if task.name == "triage_ticket":
        return triage(entitled, in_scope)
    if task.name == "search_knowledge_base":
        return {"hits": [{"slug": "app-port-mismatch", "title": "t", "score": 1.0}]}
    if task.name == "propose_solution":
        if task.input.get("by_reference"):
            return {"revision": task.input["revision"], "cited_articles": PROPOSAL["cited_articles"],
                    "confidence": PROPOSAL["confidence"], "generated_by": "offline"}
        return {**PROPOSAL, "summary": f"fix r{task.input['revision']}"}
    if task.name == "notify_customer":
        if notify_fails and task.input.get("use_llm", True):
            return FailedActivity("model down")
        kind = task.input["kind"]
        return {"ticket_id": "T-1", "notification_id": f"T-1:notification:{kind}", "kind": kind,
                "subject": "s", "created_at": task.input["created_at"],
                "generated_by": "offline" if notify_fails else "conversation-api",
                **({} if task.input.get("by_reference") else {"body": "b"})}
    if task.name == "escalate_ticket":
        return {"ticket_id": "T-1", "reason": task.input["reason"], "escalated_at": task.input["escalated_at"],
                "message_id": f"T-1:escalation:{task.input['reason']}"}
    if task.name == "record_progress":
        return {"applied": True}
    if task.name == "deliver_notification":
        given = task.input.get("notification")  # v3: None, and the notification's kind
        notification_id = given["notification_id"] if given else f"T-1:notification:{task.input['kind']}"
        if no_address:
            return {"notification_id": notification_id, "ticket_id": "T-1",
                    "status": "no_address", "reason": "customer CUST001 has no contact email"}
        if uncertain:
            return {"notification_id": notification_id, "ticket_id": "T-1",
                    "status": "uncertain", "attempts": 1, "reason": "attempt 1 may have mailed it"}
        return {"notification_id": notification_id, "ticket_id": "T-1",
                "status": "sent", "attempts": 1, "sent_at": "2026-11-23T12:00:09+00:00"}
    if task.name == "stop_agent_runs":
        return []
    if task.name == "index_resolved_case":
        return {"ticket_id": "T-1", "created": True, "redactions": 1}
    raise AssertionError(f"unexpected activity {task.name}")


def responder(waits=(), cancel_at_step=None, **world):
    """Scripts the workflow's world. `waits` answers each wait for a decision in turn: a decision
    payload, None (approval timeout), SLA (the SLA timer fires) or CANCEL. cancel_at_step cancels
    the ticket instead of finishing that step (an activity name)."""
    waits = list(waits)

    def respond(task: FakeTask):
        if task.kind == "activity":  # awaited without a cancellation race
            return activity_result(task, **world)
        if task.kind == "timer":  # a wait for an outage to pass, not cancellable
            return None
        assert task.kind == "any", task
        first = task.children[0]
        cancel = next(c for c in task.children if c.kind == "event" and c.name == "ticket_cancelled")
        if first.kind == "timer":  # a wait for an outage to pass: it passes
            return first
        if first.kind in ("activity", "all"):
            name = first.children[0].name if first.kind == "all" else first.name
            if name == cancel_at_step:
                cancel.result = {"by": "tester-engineer", "reason": "duplicate"}
                return cancel
            if first.kind == "all":
                results = [activity_result(c, **world) for c in first.children]
                failed = next((r for r in results if isinstance(r, FailedActivity)), None)
                first.result = failed or results
            else:
                first.result = activity_result(first, **world)
            if isinstance(first.result, FailedActivity):
                return first  # get_result raises, as a failed task does
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


def steps(calls):
    """Each step by name, without the bookkeeping (record_progress, and the mail delivery and
    case indexing that follow a notification; their own tests read them): an activity's name,
    'all' for the fan-out, 'wait' for a decision wait."""
    out = []
    for call in calls:
        inner = call[1][0] if call[0] == "any" else call
        name = {"activity": lambda c: c[1], "all": lambda c: "all", "event": lambda c: "wait",
                "child": lambda c: c[1]}[inner[0]](inner)
        if name not in ("record_progress", "deliver_notification", "index_resolved_case"):
            out.append(name)
    return out


def records(calls):
    """The progress records in the order the workflow made them: record_progress steps' inputs
    and (v2) the records other steps carried."""
    found = []
    for call in calls:
        inner = call[1][0] if call[0] == "any" else call
        for task in (inner[1] if inner[0] == "all" else [inner]):
            if task[0] != "activity":
                continue
            payload = json.loads(task[2])
            if task[1] == "record_progress":
                found.append(payload)
            elif PROGRESS_FIELD in payload:
                found.append(payload[PROGRESS_FIELD])
    return found


def inputs(calls, name):
    found = []
    for call in calls:
        inner = call[1][0] if call[0] == "any" else call
        for task in (inner[1] if inner[0] == "all" else [inner]):
            if task[0] == "activity" and task[1] == name:
                found.append(json.loads(task[2]))
    return found


def run(waits=(), **world):
    return run_workflow(WORKFLOWS[VERSION[0]], TICKET, responder(waits, **world))


def test_the_propose_step_is_told_its_subject_only_from_v4(version):
    _output, calls, _ = run([decision()])
    request = inputs(calls, "propose_solution")[0]
    if version == "v4":
        assert request["subject"] == {"ticket_id": "T-1", "description": TICKET["description"],
                                      "category": "connectivity", "priority": "medium"}
        assert "ticket" not in request and "triage" not in request
    else:  # as their histories recorded it: the whole ticket and triage
        assert "subject" not in request
        assert request["ticket"]["ticket_id"] == "T-1" and request["triage"]["kb_queries"] == ["q1", "q2", "q3"]
    assert ProposeRequest.model_validate(request).about().category == "connectivity"


def test_a_propose_request_names_one_subject():
    subject = {"ticket_id": "T-1", "description": "d", "category": "state", "priority": "low"}
    base = {"queries": ["q"], "search_results": [[]], "proposed_at": TICKET["filed_at"]}
    assert ProposeRequest.model_validate({**base, "subject": subject}).about().priority == "low"
    with pytest.raises(ValueError, match="names its subject"):
        ProposeRequest.model_validate(base)
    with pytest.raises(ValueError, match="names its subject"):
        ProposeRequest.model_validate({**base, "subject": subject, "ticket": TICKET, "triage": triage()})


def notification_of(output: dict) -> dict:
    """The output's notification: whole (v1, v2) or by reference to its record (v3)."""
    return output.get("notification") or output["notification_ref"]


def test_approved_ticket_runs_every_stage_in_order_and_records_each_transition(version):
    output, calls, ctx = run([decision()])
    assert steps(calls) == ["triage_ticket", "all", "propose_solution", "wait", "notify_customer"]
    assert output["stage"] == "completed" and output["version"] == version
    # v2 and v3 keep a step of their own only for the record before the wait and the last one.
    record_steps = [c for c in calls if c[0] == "activity" and c[1] == "record_progress"]
    assert len(record_steps) == {"v1": 8, "v2": 2, "v3": 2, "v4": 2}[version]
    assert notification_of(output)["kind"] == "resolved"
    if version in BY_REFERENCE:  # the approved proposal's text stays in its record; the steps read it
        assert "final_solution" not in output and "proposal" not in output
        assert output["proposal_ref"]["revision"] == 0
        assert inputs(calls, "notify_customer")[0]["solution_revision"] == 0
        assert "body" not in output["notification_ref"]
    else:
        assert "1. do it" in output["final_solution"]
    stages = [s["stage"] for s in ctx.statuses]
    assert stages[0] == "triage" and stages[-1] == "completed"
    assert stages.index("expert_analysis") < stages.index("awaiting_approval") < stages.index("notifying")
    recorded = records(calls)
    seqs = [r["seq"] for r in recorded]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1  # merged records keep the later seq
    assert [r["progress"].get("stage") for r in recorded if r["progress"].get("stage")] == [
        "triage", "expert_analysis", "awaiting_approval", "notifying", "completed"]
    kinds = [e["kind"] for r in recorded for e in r["events"]]
    assert kinds == ["filed", "triaged", "kb_query", "kb_query", "kb_query", "proposed", "solution_published",
                     "decision", "notification_sent", "delivered", "case_indexed", "finished"]
    assert output["delivery"]["status"] == "sent"
    assert recorded[0]["events"][0]["at"] == TICKET["filed_at"]
    # The API reads the workflow's answer to its decision back from the custom status.
    # The ack names the stage the decision led to: the API answers it, not a stage read later.
    assert ctx.statuses[-1]["acks"] == [{"decision_id": "d-0-True", "revision": 0, "outcome": "applied",
                                         "stage": "notifying"}]


def test_engineer_text_replaces_the_proposal():
    output, calls, _ = run([decision(final_solution="Restart with --app-port 8080.")])
    assert output["final_solution"] == "Restart with --app-port 8080."
    assert inputs(calls, "notify_customer")[0]["solution"] == "Restart with --app-port 8080."
    assert inputs(calls, "notify_customer")[0].get("solution_revision") is None


def test_not_entitled_customer_is_told_and_skips_the_expert():
    output, calls, _ = run(entitled=False)
    assert steps(calls) == ["triage_ticket", "notify_customer"]
    assert output["stage"] == "not_entitled"
    assert inputs(calls, "notify_customer")[0]["kind"] == "not_entitled"


def test_out_of_scope_ticket_goes_to_a_person():
    output, calls, _ = run(in_scope=False)
    assert steps(calls) == ["triage_ticket", "escalate_ticket", "notify_customer"]
    assert inputs(calls, "escalate_ticket")[0]["reason"] == "out_of_scope"
    assert output["stage"] == "escalated" and output["escalations"] == ["out_of_scope"]
    assert "proposal" not in output


def test_timeout_leaves_the_wait_then_escalates_and_tells_the_customer():
    output, calls, ctx = run([None])
    assert steps(calls)[-2:] == ["escalate_ticket", "notify_customer"]
    assert inputs(calls, "escalate_ticket")[0]["reason"] == "approval_timeout"
    assert output["stage"] == "escalated" and notification_of(output)["kind"] == "escalated"
    after_wait = [s["stage"] for s in ctx.statuses][[s["stage"] for s in ctx.statuses].index("awaiting_approval"):]
    assert after_wait[1] == "escalating"  # a decision now gets 409, never 202-then-dropped


def test_sla_breach_escalates_once_and_the_wait_goes_on():
    output, calls, ctx = run([SLA, decision()])
    assert steps(calls) == ["triage_ticket", "all", "propose_solution", "wait", "escalate_ticket", "wait",
                            "notify_customer"]
    assert inputs(calls, "escalate_ticket")[0]["reason"] == "sla_breach"
    second_wait = [c for c in calls if c[0] == "any" and c[1][0][0] == "event"][1][1]
    assert len(second_wait) == 3  # decision, timeout, cancel: no second SLA timer
    assert output["stage"] == "completed" and output["escalations"] == ["sla_breach"]


def test_rejection_revises_with_the_notes_then_approval_completes(version):
    output, calls, ctx = run([decision(False, 0, support_notes="check mTLS"), decision(True, 1)])
    assert steps(calls) == ["triage_ticket", "all", "propose_solution", "wait",
                            "all", "propose_solution", "wait", "notify_customer"]
    queries = [i["query"] for i in inputs(calls, "search_knowledge_base")]
    assert len(queries) == 7 and queries[-1] == "check mTLS"
    assert inputs(calls, "propose_solution")[1]["revision"] == 1
    assert output["stage"] == "completed" and output["revision"] == 1
    if version in BY_REFERENCE:
        assert output["proposal_ref"]["revision"] == 1
        assert inputs(calls, "notify_customer")[0]["solution_revision"] == 1
    else:
        assert output["proposal"]["summary"] == "fix r1"
    # Once revision 0's decision is applied, no status shows revision 0 waiting again.
    applied = next(i for i, s in enumerate(ctx.statuses) if s.get("acks"))
    assert ctx.statuses[applied]["stage"] == "expert_analysis" and ctx.statuses[applied]["revision"] == 1
    assert [a["stage"] for a in ctx.statuses[-1]["acks"]] == ["expert_analysis", "notifying"]


def test_the_last_allowed_rejection_is_acked_as_escalating():
    _, _, ctx = run([decision(False, i, support_notes=f"n{i}") for i in range(3)])
    assert [a["stage"] for a in ctx.statuses[-1]["acks"]] == ["expert_analysis", "expert_analysis", "escalating"]


def test_too_many_rejections_escalate():
    output, calls, _ = run([decision(False, i, support_notes=f"n{i}") for i in range(3)])
    assert output["stage"] == "escalated"
    assert inputs(calls, "escalate_ticket")[0]["reason"] == "revisions_exhausted"
    assert steps(calls).count("propose_solution") == 3  # the first proposal and MAX_REVISIONS=2


@pytest.mark.parametrize("payload", [
    {"approved": True, "revision": 7},            # another revision
    {"approved": True},                           # no revision (raised around the API)
    {"approved": 0, "revision": 0},               # not a boolean
    '{"approved": true',                          # the CLI's string, not JSON
    "[1, 2]",                                     # JSON, not an object
    42,
])
def test_a_decision_that_does_not_hold_is_dropped_recorded_and_the_wait_goes_on(payload):
    output, calls, ctx = run([payload, decision()])
    assert steps(calls).count("wait") == 2
    assert output["stage"] == "completed"
    dropped = [e for r in records(calls) for e in r["events"] if e["kind"] == "decision_dropped"]
    assert len(dropped) == 1 and dropped[0]["details"]["reason"]
    assert output["acks"][0]["outcome"] == "refused"


def test_the_clis_json_string_is_parsed():
    output, _, _ = run(['{"approved": true, "revision": 0}'])
    assert output["stage"] == "completed" and output["decision"]["approver"].startswith("unknown")


def test_cancel_while_waiting_tells_the_customer():
    output, calls, _ = run([CANCEL])
    assert steps(calls)[-1] == "notify_customer" and calls[-2][0] == "activity"  # not cancellable
    assert output["stage"] == "cancelled" and output["cancellation"]["by"] == "tester-engineer"
    assert notification_of(output)["kind"] == "cancelled"


def test_cancel_during_analysis_stops_before_the_proposal():
    output, calls, _ = run(cancel_at_step="search_knowledge_base")
    assert steps(calls) == ["triage_ticket", "all", "notify_customer"]
    assert output["stage"] == "cancelled"


def test_once_a_decision_is_applied_the_final_message_is_not_cancellable():
    output, calls, _ = run([decision()], cancel_at_step="notify_customer")
    assert output["stage"] == "completed"


def test_failing_llm_notification_falls_back_to_offline():
    output, calls, _ = run([decision()], notify_fails=True)
    assert steps(calls)[-2:] == ["notify_customer", "notify_customer"]
    assert inputs(calls, "notify_customer")[-1]["use_llm"] is False
    assert notification_of(output)["generated_by"] == "offline"


@pytest.mark.parametrize("step", ["triage_ticket", "search_knowledge_base", "propose_solution"])
def test_a_step_failing_after_its_retries_escalates_with_system_error(step):
    output, calls, _ = run([decision()], failing=(step,))
    assert output["stage"] == "escalated" and output["escalations"] == ["system_error"]
    assert inputs(calls, "escalate_ticket")[-1]["reason"] == "system_error"
    assert step.split("_")[0] in inputs(calls, "escalate_ticket")[-1]["detail"]
    assert inputs(calls, "notify_customer")[-1]["kind"] == "escalated"
    assert output["system_error"]["step"] in ("triage", "search", "propose")


def test_a_failing_escalation_still_tells_the_customer():
    output, calls, _ = run([None], failing=("escalate_ticket",))
    assert output["stage"] == "escalated" and output["system_error"]["step"] == "escalate"
    assert notification_of(output)["kind"] == "escalated"


def test_a_failing_notification_still_escalates():
    output, calls, _ = run([decision()], failing=("notify_customer",))
    assert output["stage"] == "escalated" and output["system_error"]["step"] == "notify"
    assert inputs(calls, "escalate_ticket")[-1]["reason"] == "system_error"


def test_a_failing_read_model_never_fails_the_ticket():
    output, _, _ = run([decision()], failing=("record_progress",))
    assert output["stage"] == "completed"


def test_every_retried_payload_carries_the_workflows_clock_not_the_activitys():
    _, calls, _ = run([SLA, None])
    for name in ("escalate_ticket", "notify_customer", "propose_solution"):
        for request in inputs(calls, name):
            stamp = request.get("escalated_at") or request.get("created_at") or request.get("proposed_at")
            assert stamp.startswith("2026-11-23T12:"), (name, request)


@pytest.mark.parametrize("waits", [[decision()], [None], [SLA, CANCEL],
                                   [decision(False, 0, support_notes="x"), decision(True, 1)]])
def test_the_same_history_gives_the_same_calls(waits):
    first = run(waits)
    second = run(waits)
    assert first[1] == second[1]
    assert first[0] == second[0]


def test_every_notification_is_mailed_after_it_is_written(version):
    _, calls, _ = run([decision()])
    [delivery] = inputs(calls, "deliver_notification")
    if version in BY_REFERENCE:  # the step reads the notification record of that kind
        assert "notification" not in delivery and delivery["kind"] == "resolved"
    else:
        assert delivery["notification"]["notification_id"] == "T-1:notification:resolved"
    assert delivery["priority"] == "medium"


def test_a_customer_with_no_address_goes_to_a_person():
    output, calls, _ = run([decision()], no_address=True)
    assert output["stage"] == "escalated" and "no_address" in output["escalations"]
    assert inputs(calls, "escalate_ticket")[-1]["reason"] == "no_address"


def test_a_delivery_that_may_have_been_mailed_goes_to_a_person_not_a_second_mail():
    output, calls, _ = run([decision()], uncertain=True)
    assert output["stage"] == "escalated" and "delivery_uncertain" in output["escalations"]
    assert len(inputs(calls, "deliver_notification")) == 1
    assert inputs(calls, "escalate_ticket")[-1]["detail"] == "attempt 1 may have mailed it"


def test_a_delivery_failing_after_its_retries_is_escalated():
    output, calls, _ = run([decision()], failing=("deliver_notification",))
    assert output["stage"] == "escalated" and output["escalations"] == ["delivery_failed"]
    assert "deliver_notification broke" in output["delivery_error"]


def test_an_approved_solution_is_indexed_as_a_case_after_the_notification_before_finishing(version):
    output, calls, _ = run([decision()])
    names = [c[1] for c in calls if c[0] == "activity"]
    index = names.index("index_resolved_case")
    assert names.index("deliver_notification") < index < len(names) - 1 and names[-1] == "record_progress"
    [request] = inputs(calls, "index_resolved_case")
    if version in BY_REFERENCE:  # the step reads the approved proposal from its record
        assert request["solution"] is None and request["solution_revision"] == 0
    else:
        assert request["solution"] == output["final_solution"]
    assert request["edited"] is False
    assert request["approver"] == "tester-engineer" and request["cited_articles"] == ["app-port-mismatch"]
    assert request["customer_name"] == "Acme" and request["category"] == "connectivity"
    assert request["resolved_at"].startswith("2026-11-23T12:")
    [event] = [e for r in records(calls) for e in r["events"] if e["key"] == "case_indexed"]
    assert event["kind"] == "case_indexed" and event["details"]["created"] is True


def test_an_edited_solution_is_indexed_as_edited():
    _, calls, _ = run([decision(final_solution="Restart with --app-port 8080.")])
    [request] = inputs(calls, "index_resolved_case")
    assert request["solution"] == "Restart with --app-port 8080." and request["edited"] is True


@pytest.mark.parametrize("waits,world", [([None], {}), ([decision(False, 0), decision(False, 1), decision(False, 2)], {}),
                                         ([CANCEL], {}), ([], {"entitled": False}), ([], {"in_scope": False})])
def test_only_an_approved_ticket_is_indexed(waits, world):
    _, calls, _ = run(waits, **world)
    assert inputs(calls, "index_resolved_case") == []


def test_a_failing_index_step_is_recorded_and_the_ticket_still_completes():
    output, calls, _ = run([decision()], failing=("index_resolved_case",))
    assert output["stage"] == "completed" and output["escalations"] == []
    [event] = [e for r in records(calls) for e in r["events"] if e["key"] == "case_indexed"]
    assert event["kind"] == "case_index_failed" and "index_resolved_case broke" in event["details"]["reason"]


def _without_progress(payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k != PROGRESS_FIELD}


@pytest.mark.parametrize("step", ["triage_ticket", "propose_solution", "escalate_ticket"])
def test_an_unreachable_dependency_is_waited_out_and_the_same_call_made_again(step):
    waits = [None] if step == "escalate_ticket" else [decision()]  # escalate: the approval times out
    output, calls, ctx = run(waits, outages={step: 3})
    assert output["stage"] == ("escalated" if step == "escalate_ticket" else "completed")
    assert "system_error" not in output["escalations"]
    made = inputs(calls, step)
    assert len(made) == 4
    # The same input every time (the progress record rides only on the first).
    assert all(_without_progress(p) == _without_progress(made[0]) for p in made)
    # Between them, a durable timer of OUTAGE_WAIT, raced against a cancellation.
    timers = [c for c in calls if c[0] == "any" and c[1][0][0] == "timer"]
    assert len(timers) == 3
    assert [p for p in ctx.patches if p == PATCH_RIDE_OUT_OUTAGES] == [PATCH_RIDE_OUT_OUTAGES] * 3
    # The status says what the ticket waits for while it waits, and stops saying it after.
    waiting = [v["waiting_for"] for v in ctx.statuses if v.get("waiting_for")]
    assert len(waiting) == 3 and len(set(waiting)) == 1
    assert waiting[0].startswith(f"{step.split('_')[0]}: a dependency cannot be reached (since ")
    assert "waiting_for" not in ctx.statuses[-1]


def test_an_outage_longer_than_the_horizon_goes_to_a_person():
    output, calls, _ = run([decision()], outages={"propose_solution": 10_000})
    rounds = int(wf_module.OUTAGE_HORIZON / wf_module.OUTAGE_WAIT) + 1
    assert len(inputs(calls, "propose_solution")) == rounds
    assert output["stage"] == "escalated" and output["system_error"]["step"] == "propose"


def test_a_history_recorded_before_the_patch_replays_as_it_ran():
    from tests.unit.fake_workflow_context import FakeContext

    output, calls, ctx = run_workflow(WORKFLOWS[VERSION[0]], TICKET, responder([decision()], outages={"propose_solution": 1}),
                                      ctx=FakeContext(patched=False))
    assert len(inputs(calls, "propose_solution")) == 1
    assert output["stage"] == "escalated" and output["system_error"]["step"] == "propose"


def test_the_outputs_acks_name_no_stage_as_every_recorded_history_has_them():
    # The stage is for the API, read from the custom status; an output that changed would no
    # longer be the one recorded histories end with.
    output, _, ctx = run([decision()])
    assert output["acks"] == [{"decision_id": "d-0-True", "revision": 0, "outcome": "applied"}]
    assert ctx.statuses[-1]["acks"][0]["stage"] == "notifying"


def test_an_unreachable_broker_does_not_make_the_llm_notification_fall_back():
    output, calls, _ = run([decision()], outages={"notify_customer": 2})
    notified = inputs(calls, "notify_customer")
    assert len(notified) == 3 and all(n.get("use_llm", True) for n in notified)
    assert output["stage"] == "completed"
