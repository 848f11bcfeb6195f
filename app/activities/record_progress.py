"""Activity: record one transition of a ticket, as the workflow decided it, in the read model
(the list and the timeline). The workflow is the only caller, so the read model has one writer;
`seq` makes a retried or stale record a no-op."""

from __future__ import annotations

from dapr.ext.workflow import WorkflowActivityContext

from app.activities import deps
from app.workflows.contracts import ProgressApplied, ProgressRecord


def record_progress(ctx: WorkflowActivityContext, record: ProgressRecord) -> ProgressApplied:
    return ProgressApplied(applied=deps.current().read_model.apply(record))
