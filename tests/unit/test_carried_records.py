"""v2's progress records carried on a step's input: applied to the read model before the step
runs, stripped from what the step sees, and found again by a rebuild from the history."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from dapr.ext.workflow._durabletask.internal import protos as pb
from google.protobuf import wrappers_pb2

from app.activities import deps
from app.core.faults import FaultPlan
from app.readmodel.store import ReadModel
from app.readmodel.sync import progress_records
from app.workflows.contracts import PROGRESS_FIELD, ProgressRecord, SearchRequest, SearchResult, TicketProgress
from app.workflows.runtime import typed_activity


@pytest.fixture
def read_model(tmp_path):
    model = ReadModel(f"sqlite:///{tmp_path}/rm.db")
    deps.provide(SimpleNamespace(read_model=model, faults=FaultPlan()))
    yield model
    deps.provide(None)
    model.close()


def carried(seq: int, stage: str) -> dict:
    return ProgressRecord(ticket_id="T-1", seq=seq, progress=TicketProgress(stage=stage, customer_id="CUST001"),
                          events=[]).model_dump(mode="json")


def test_a_carried_record_is_applied_first_and_the_step_never_sees_it(read_model):
    seen = {}

    def search(ctx, request: SearchRequest) -> SearchResult:
        seen["request"] = request
        seen["stage_when_run"] = read_model.get("T-1")["stage"]
        return SearchResult(hits=[])

    step = typed_activity("search_knowledge_base", search)
    payload = {**SearchRequest(ticket_id="T-1", query="sidecar", k=5).model_dump(mode="json"),
               PROGRESS_FIELD: carried(2, "expert_analysis")}
    assert step(None, payload) == {"hits": []}
    assert seen["stage_when_run"] == "expert_analysis"
    assert seen["request"].query == "sidecar"
    # A retry of the step applies nothing new and still runs.
    assert step(None, payload) == {"hits": []}
    assert read_model.get("T-1")["seq"] == 2


def test_a_read_model_that_fails_does_not_fail_the_step(read_model):
    read_model.close()  # every apply now raises

    def search(ctx, request: SearchRequest) -> SearchResult:
        return SearchResult(hits=[])

    payload = {**SearchRequest(ticket_id="T-1", query="q", k=5).model_dump(mode="json"),
               PROGRESS_FIELD: carried(1, "triage")}
    assert typed_activity("search_knowledge_base", search)(None, payload) == {"hits": []}


def scheduled(name: str, payload: dict) -> pb.HistoryEvent:
    return pb.HistoryEvent(taskScheduled=pb.TaskScheduledEvent(
        name=name, input=wrappers_pb2.StringValue(value=json.dumps(payload))))


def test_a_rebuild_reads_records_from_record_steps_and_from_carried_ones():
    history = [scheduled("triage_ticket", {"ticket_id": "T-1", PROGRESS_FIELD: carried(1, "triage")}),
               scheduled("search_knowledge_base", {"ticket_id": "T-1", "query": "q"}),
               scheduled("record_progress", carried(2, "awaiting_approval"))]
    assert [(r.seq, r.progress.stage) for r in progress_records(history)] == [(1, "triage"), (2, "awaiting_approval")]
