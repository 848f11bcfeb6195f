"""A v3 ticket's output names the proposal's and the notification's records instead of carrying
them (app/workflows/ticket_workflow.py): the status reads them back and shows what a v1 or v2
output carries, and keeps a reference whose record is missing rather than invent a default."""

from __future__ import annotations

from app.domain.stored import analysis_key, notification_key
from app.services.tickets import with_stored_records
from app.workflows.contracts import Proposal
from tests.unit.memory_state_store import MemoryStateStore

PROPOSAL = {"summary": "Set --app-port to 8080.", "steps": ["Find the port", "Set it"],
            "cited_articles": ["app-port-mismatch"], "confidence": 0.8, "generated_by": "offline"}
NOTIFICATION = {"ticket_id": "T-1", "notification_id": "T-1:notification:resolved", "kind": "resolved",
                "subject": "Ticket T-1: proposed solution", "body": "Hello, ... Set --app-port to 8080. ...",
                "generated_by": "offline", "created_at": "2026-12-05T12:00:00+00:00"}


def v3_output(**decision):
    return {"ticket_id": "T-1", "stage": "completed", "version": "v3", "revision": 1,
            "decision": {"approved": True, "revision": 1, **decision},
            "proposal_ref": {"revision": 1, "cited_articles": ["app-port-mismatch"], "confidence": 0.8},
            "notification_ref": {k: v for k, v in NOTIFICATION.items() if k != "body"}}


def stored_records():
    records = MemoryStateStore()
    records.save(analysis_key("T-1", 0), {"proposal": {**PROPOSAL, "summary": "revision 0's"}})
    records.save(analysis_key("T-1", 1), {"proposal": PROPOSAL})
    records.save(notification_key("T-1", "resolved"), NOTIFICATION)
    return records


def test_an_unedited_approval_shows_the_stored_proposal_its_text_and_the_mail():
    output = with_stored_records(v3_output(), "T-1", stored_records())
    assert output["proposal"] == PROPOSAL  # the revision the reference names, not revision 0
    assert output["final_solution"] == Proposal.model_validate(PROPOSAL).as_text()
    assert output["notification"] == NOTIFICATION
    assert "proposal_ref" not in output and "notification_ref" not in output


def test_an_edited_approval_keeps_the_engineers_text():
    output = with_stored_records(v3_output(final_solution="Restart with --app-port 8080.") |
                                 {"final_solution": "Restart with --app-port 8080."}, "T-1", stored_records())
    assert output["final_solution"] == "Restart with --app-port 8080."
    assert output["proposal"] == PROPOSAL


def test_a_rejected_last_revision_has_no_final_solution():
    output = with_stored_records({**v3_output(), "stage": "escalated",
                                  "decision": {"approved": False, "revision": 1}}, "T-1", stored_records())
    assert "final_solution" not in output and output["proposal"] == PROPOSAL


def test_a_missing_record_leaves_its_reference_in_place():
    records = stored_records()
    del records.values[analysis_key("T-1", 1)]
    output = with_stored_records(v3_output(), "T-1", records)
    assert output["proposal_ref"]["revision"] == 1 and "proposal" not in output and "final_solution" not in output
    assert output["notification"] == NOTIFICATION


def test_v1_and_v2_outputs_are_shown_as_they_are():
    output = {"ticket_id": "T-1", "stage": "completed", "proposal": PROPOSAL, "final_solution": "x",
              "notification": NOTIFICATION}
    assert with_stored_records(output, "T-1", stored_records()) is output


def test_an_instance_rerun_from_an_event_reads_its_tickets_records():
    from app.services.tickets import to_status
    from app.services.workflow_gateway import Instance

    rerun = Instance(instance_id="T-1-RERUN", name="ticket_workflow", runtime_status="completed",
                     output=v3_output())
    status = to_status(rerun, stored_records())
    assert status.output["notification"] == NOTIFICATION and status.output["proposal"] == PROPOSAL
