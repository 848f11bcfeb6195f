"""The console's pushed signature: a ticket page reloads when its workflow moves, even when the
read model does not (the final record is written just before the workflow completes)."""

from __future__ import annotations

from app.console.routes import signature
from app.readmodel.store import ReadModel
from app.services.workflow_gateway import Instance
from app.workflows.contracts import TICKET_WORKFLOW, ProgressRecord, TicketProgress
from tests.api.fakes import FakeWorkflows


def test_a_ticket_signature_changes_when_only_the_workflow_moved(tmp_path):
    read_model = ReadModel(f"sqlite:///{tmp_path}/rm.db")
    read_model.apply(ProgressRecord(ticket_id="T-1", seq=9, progress=TicketProgress(stage="completed"), events=[]))
    workflows = FakeWorkflows()
    workflows.instances["T-1"] = Instance(instance_id="T-1", name=TICKET_WORKFLOW, runtime_status="running",
                                          last_updated_at="2026-12-02T10:00:00Z", custom_status={"stage": "notifying"})
    before = signature(read_model, "T-1", workflows)
    workflows.instances["T-1"].runtime_status = "completed"
    workflows.instances["T-1"].last_updated_at = "2026-12-02T10:00:01Z"
    assert signature(read_model, "T-1", workflows) != before
    read_model.close()
