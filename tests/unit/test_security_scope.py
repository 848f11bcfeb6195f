"""Who reaches which customer and ticket, what a client sees of its ticket, and strict decisions."""

import pytest
from fastapi import HTTPException
from pydantic import ValidationError

from app.api.scope import can_read, check_filing, check_filing_scope, sees_full_status
from app.core.security import Principal
from app.domain.client_status import ClientTicketStatus, to_client_status
from app.domain.decision import DecisionRequest
from app.domain.status import TicketStatus

PORTAL = Principal("portal", "client", frozenset({"CUST001"}))
CRM = Principal("crm", "client")
ENGINEER = Principal("alice", "engineer")
OPERATOR = Principal("ops", "operator")


def _status_of(call) -> int | None:
    try:
        call()
    except HTTPException as error:
        return error.status_code
    return None


def test_a_scoped_client_may_not_file_outside_its_scope_known_customer_or_not():
    with pytest.raises(HTTPException) as known:
        check_filing(PORTAL, "CUST002", customer_exists=True)
    with pytest.raises(HTTPException) as unknown:
        check_filing(PORTAL, "CUST999", customer_exists=False)
    assert known.value.status_code == unknown.value.status_code == 403
    # The same answer either way, but for the id the client sent itself.
    assert known.value.detail.replace("CUST002", "X") == unknown.value.detail.replace("CUST999", "X")
    assert _status_of(lambda: check_filing_scope(PORTAL, "CUST002")) == 403


def test_filing_within_scope_or_unscoped_passes_and_an_unknown_customer_is_404():
    assert _status_of(lambda: check_filing(PORTAL, "CUST001", customer_exists=True)) is None
    for principal in (CRM, ENGINEER):
        assert _status_of(lambda: check_filing(principal, "CUST002", customer_exists=True)) is None
        assert _status_of(lambda: check_filing(principal, "CUST999", customer_exists=False)) == 404
    # A scoped client's own customer that is not loaded: nothing to hide from it.
    assert _status_of(lambda: check_filing(PORTAL, "CUST001", customer_exists=False)) == 404


def test_reading_tickets():
    assert can_read(PORTAL, "CUST001", "portal")
    assert not can_read(PORTAL, "CUST002", "portal")   # its own filing, but not (any more) its customer
    assert not can_read(PORTAL, "CUST001", "crm")      # its customer, filed by someone else
    assert can_read(CRM, "CUST003", "crm") and not can_read(CRM, "CUST003", "portal")
    assert can_read(ENGINEER, "CUST002", "crm") and can_read(OPERATOR, None, None)
    assert not sees_full_status(PORTAL) and not sees_full_status(CRM)
    assert sees_full_status(ENGINEER) and sees_full_status(OPERATOR)


INTERNALS = ("proposal-summary-secret", "engineer note secret", "approver-alice", "llm fallback secret",
             "checkout-system", "1.14.4", "Traceback secret", "ops@acme.example")


def _full(stage: str, output: dict, **fields) -> dict:
    return TicketStatus(ticket_id="TKT-1", instance_id="TKT-1", status="completed", stage=stage, output=output,
                        created_at="2026-01-01T00:00:00+00:00", last_updated_at="2026-01-01T00:05:00+00:00",
                        sla_due="2026-01-01T01:00:00+00:00", **fields).model_dump()


TRIAGE = {"customer_name": "Acme", "contact_email": "ops@acme.example", "plan": "enterprise",
          "systems": {"applications": ["checkout-system"], "dapr_version": "1.14.4"},
          "llm_fallback_reason": "llm fallback secret"}
NOTIFICATION = {"ticket_id": "TKT-1", "customer_id": "CUST001", "kind": "resolved", "subject": "Ticket TKT-1",
                "body": "Here is the solution", "generated_by": "offline",
                "llm_fallback_reason": "llm fallback secret", "created_at": "2026-01-01T00:05:00+00:00"}


def test_a_completed_ticket_shows_the_solution_and_notification_and_nothing_internal():
    full = _full("completed", {
        "stage": "completed", "triage": TRIAGE,
        "proposal": {"summary": "proposal-summary-secret", "llm_fallback_reason": "llm fallback secret"},
        "decision": {"approved": True, "approver": "approver-alice", "support_notes": "engineer note secret"},
        "final_solution": "Restart the sidecar", "notification": NOTIFICATION},
        decision={"approved": True, "approver": "approver-alice"}, escalations=["sla_breach"])
    view = to_client_status(full)
    assert view == ClientTicketStatus(
        ticket_id="TKT-1", stage="completed", sla_due="2026-01-01T01:00:00+00:00", solution="Restart the sidecar",
        notification={"kind": "resolved", "subject": "Ticket TKT-1", "body": "Here is the solution",
                      "sent_at": "2026-01-01T00:05:00+00:00"},
        created_at="2026-01-01T00:00:00+00:00", last_updated_at="2026-01-01T00:05:00+00:00")
    text = view.model_dump_json()
    assert not [secret for secret in INTERNALS if secret in text]
    assert view.view == "client"


def test_a_ticket_awaiting_approval_shows_no_proposal():
    full = _full("awaiting_approval", {"stage": "awaiting_approval", "revision": 1,
                                       "proposal": {"summary": "proposal-summary-secret"},
                                       "final_solution": "proposal-summary-secret",  # never before approval
                                       "decision": {"support_notes": "engineer note secret"}})
    view = to_client_status(full)
    assert (view.stage, view.solution, view.notification) == ("awaiting_approval", None, None)
    assert not [secret for secret in INTERNALS if secret in view.model_dump_json()]


def test_a_failed_ticket_shows_no_error_text():
    full = _full("failed", {"error": "Traceback secret", "last_progress": {"triage": TRIAGE}})
    view = to_client_status(full)
    assert view.stage == "failed" and not [s for s in INTERNALS if s in view.model_dump_json()]


def test_the_client_view_is_built_from_a_model_too():
    model = TicketStatus(ticket_id="T", instance_id="T", status="running", stage="triage")
    assert to_client_status(model) == to_client_status(model.model_dump())


@pytest.mark.parametrize("body", [{"approved": 0}, {"approved": 1}, {"approved": "true"}, {"approved": None},
                                  {"approved": False, "final_solution": "only with an approval"},
                                  {"approved": True, "priority": "high"}, {}])
def test_decisions_are_strictly_typed(body):
    with pytest.raises(ValidationError):
        DecisionRequest.model_validate(body)


def test_valid_decisions_keep_their_shape():
    approval = DecisionRequest.model_validate({"approved": True, "final_solution": "  Fix it  "})
    assert approval.model_dump() == {"approved": True, "final_solution": "Fix it", "support_notes": None, "revision": None}
    rejection = DecisionRequest.model_validate({"approved": False, "support_notes": "try again",
                                                "final_solution": None})
    assert rejection.model_dump() == {"approved": False, "final_solution": None, "support_notes": "try again",
                                      "revision": None}
    assert approval.approved is True and rejection.approved is False


def test_the_decision_schema_states_the_cross_field_rule():
    schema = DecisionRequest.model_json_schema()
    approval, rejection = schema["$defs"]["Approval"], schema["$defs"]["Rejection"]
    assert approval["properties"]["approved"]["const"] is True
    assert rejection["properties"]["approved"]["const"] is False
    assert rejection["properties"]["final_solution"]["type"] == "null"
    assert approval["additionalProperties"] is False and rejection["additionalProperties"] is False


def test_scope_refusals_are_logged_with_the_principal(caplog):
    with caplog.at_level("WARNING", logger="app.api.scope"), pytest.raises(HTTPException):
        check_filing_scope(PORTAL, "CUST002")
    assert not can_read(PORTAL, "CUST002", "portal")
    denied = [(r.reason, r.principal, getattr(r, "customer_id", None)) for r in caplog.records]
    assert denied == [("customer outside the client's scope", "portal", "CUST002"),
                      ("ticket not readable by this client", "portal", None)]
