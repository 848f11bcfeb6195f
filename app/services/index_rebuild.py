"""Rebuilds the ticket index and summaries from the workflows themselves, for when the index
record is lost. The Python SDK has no call for listing instances, so this uses the sidecar's
ListInstanceIDs RPC (daprd 1.18) with the SDK's own generated stub."""

from __future__ import annotations

import json
from typing import Iterator

import grpc
from dapr.conf import settings as dapr_settings
from dapr.ext.workflow import DaprWorkflowClient
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as pb
from dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc import TaskHubSidecarServiceStub
from dapr.ext.workflow.util import getAddress

from app.services import ticket_records
from app.services.tickets import to_status, workflow_state
from app.store import StateStore
from app.workflows.ticket_workflow import ticket_workflow

TICKET_WORKFLOW = ticket_workflow.__name__


def list_instance_ids(page_size: int = 500) -> Iterator[str]:
    metadata = [("dapr-api-token", dapr_settings.DAPR_API_TOKEN)] if dapr_settings.DAPR_API_TOKEN else None
    with grpc.insecure_channel(getAddress()) as channel:
        stub = TaskHubSidecarServiceStub(channel)
        token = None
        while True:
            request = pb.ListInstanceIDsRequest(pageSize=page_size)
            if token:
                request.continuationToken = token
            response = stub.ListInstanceIDs(request, metadata=metadata)
            yield from response.instanceIds
            token = response.continuationToken
            if not token or not response.instanceIds:
                return


def rebuild_index(wf: DaprWorkflowClient, records: StateStore) -> int:
    """Re-creates `index:tickets` (filing order) and each ticket's summary; returns the count."""
    tickets = []
    for instance_id in list_instance_ids():
        state = workflow_state(wf, instance_id)
        if state is None or state.name != TICKET_WORKFLOW:
            continue  # agent child workflows and other instances are not tickets
        filed = json.loads(state.serialized_input or "{}")
        status = to_status(instance_id, state)
        progress = status.output if status.status == "running" else (status.output.get("triage") or {})
        tickets.append((filed.get("filed_at") or status.created_at or "", instance_id))
        ticket_records.update_summary(
            records, instance_id, customer_id=filed.get("customer_id"), filed_at=filed.get("filed_at"),
            filed_by=filed.get("filed_by"), stage=status.stage, status=status.status,
            priority=progress.get("priority"), awaiting_decision=status.stage == "awaiting_approval")
    records.save(ticket_records.INDEX_KEY, {"ids": [i for _, i in sorted(tickets)]})
    return len(tickets)
