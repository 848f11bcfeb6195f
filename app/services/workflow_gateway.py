"""The API's port to the workflow runtime: what it reads of an instance and what it asks of one.
`DaprWorkflows` is the real one (over the sidecar); the API tests provide an in-memory one
through FastAPI's dependency_overrides."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Protocol

import grpc
from google.protobuf import wrappers_pb2
from dapr.conf import settings as dapr_settings
from dapr.ext.workflow import WorkflowState
from dapr.ext.workflow._durabletask.client import new_orchestration_state
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as pb
from dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc import TaskHubSidecarServiceStub
from dapr.ext.workflow.util import getAddress
from grpc import RpcError

from app.core.sidecar_watchdog import SidecarWatchdog
from app.workflows.contracts import WAKE_EVENT


class InstanceExists(Exception):
    """An instance with that id exists (a concurrent start won)."""


class InstanceStalled(Exception):
    """The runtime holds the instance STALLED and refuses events for it."""


@dataclass
class Instance:
    """What the runtime holds of one workflow instance."""

    instance_id: str
    name: str
    runtime_status: str  # running, completed, failed, terminated, suspended, pending, stalled
    created_at: str | None = None
    last_updated_at: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    custom_status: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None


def run_held_start(workflows: "WorkflowGateway", instance_id: str, details: dict) -> None:
    """Raises WAKE_EVENT into an instance whose start the runtime holds in its inbox with nothing
    due to run it. An event comes with a reminder of its own, whose turn takes the start from the
    inbox (no workflow version waits for the event). daprd 1.18.1 creates a start's reminder
    before it saves the start: under placement churn the reminder can run first on a host that
    finds no state and drops it (seen in the replicated drill: "No workflow state found ...
    terminating execution"), and the start then waits for good. Used by a second filing, by the
    idle wake and by the sweep's adoption of a pending instance."""
    workflows.raise_event(instance_id, WAKE_EVENT, details)


class WorkflowGateway(Protocol):
    def get(self, instance_id: str, payloads: bool = True) -> Instance | None: ...

    def start(self, workflow: str, instance_id: str, workflow_input: dict) -> None: ...

    def raise_event(self, instance_id: str, event: str, data: dict) -> None: ...

    def terminate(self, instance_id: str, output: dict | None = None) -> None: ...

    def suspend(self, instance_id: str, reason: str | None = None) -> None: ...

    def resume(self, instance_id: str, reason: str | None = None) -> None: ...

    def purge(self, instance_id: str) -> None: ...

    def list_ids(self) -> Iterator[str]: ...

    def history(self, instance_id: str) -> list: ...


def _json(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"value": text}
    return value if isinstance(value, dict) else {"value": value}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


# daprd 1.18.1 answers a workflow's state from two reads (metadata, then its inbox and history)
# taken outside the workflow actor: a save landing between them fails the read with "inbox key
# ... declared in metadata ... but missing from state store" (dapr/dapr#10242). Nothing is
# wrong on disk and the next read succeeds, so that error is read again, at once. (Seen to last
# too: a stalled instance with an event left in its inbox read that way for minutes.)
TORN_READ = "missing from state store"


def _text(value) -> wrappers_pb2.StringValue | None:
    """A payload as the runtime takes it: JSON text (as the SDK's client writes it), or none."""
    return wrappers_pb2.StringValue(value=json.dumps(value, separators=(",", ":"))) if value else None


def _reason(reason: str | None) -> wrappers_pb2.StringValue | None:
    return wrappers_pb2.StringValue(value=reason) if reason else None


def to_instance(state: WorkflowState) -> Instance:
    details = state.failure_details
    return Instance(instance_id=state.instance_id, name=state.name,
                    runtime_status=state.runtime_status.name.lower(),
                    created_at=_iso(state.created_at), last_updated_at=_iso(state.last_updated_at),
                    input=_json(state.serialized_input), output=_json(state.serialized_output),
                    custom_status=_json(state.serialized_custom_status),
                    failure=details.message if details else None)


# The calls daprd 1.18.1 runs through the workflow's actor (and its lock): the ones a wedged
# workflow holds past their deadline. A status read (GetInstance) reads the store: it answers
# for a wedged workflow too, so it says nothing either way.
_THROUGH_THE_ACTOR = frozenset({"StartInstance", "RaiseEvent", "TerminateInstance", "SuspendInstance",
                                "ResumeInstance", "PurgeInstances"})


class DaprWorkflows:
    """The gateway over the sidecar's workflow API. Every call goes over one stub with a
    deadline (`timeout`): the SDK's client waits forever by default, and a sidecar that cannot
    reach the scheduler or placement holds a start or a raised event for as long as that lasts.
    A call past its deadline raises DEADLINE_EXCEEDED, which the API answers with 503 and
    Retry-After (app/api/errors.py)."""

    def __init__(self, timeout: float = 10.0, address: str | None = None, watchdog: SidecarWatchdog | None = None):
        self.timeout = timeout
        self._channel = grpc.insecure_channel(address or getAddress())
        self._stub = TaskHubSidecarServiceStub(self._channel)
        self._watchdog = watchdog

    def _call(self, method: str, request):
        token = dapr_settings.DAPR_API_TOKEN
        watched = self._watchdog is not None and method in _THROUGH_THE_ACTOR
        instance_id = request.instanceId if watched else ""
        try:
            answer = getattr(self._stub, method)(request, timeout=self.timeout,
                                                 metadata=[("dapr-api-token", token)] if token else None)
        except RpcError as error:
            if instance_id:
                # Past the deadline: maybe a wedged workflow. The sidecar unreachable or the call
                # cancelled under it: nothing known of the actor. Any other answer: it answered.
                if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    self._watchdog.timed_out(instance_id)
                elif error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                    self._watchdog.answered(instance_id)
            raise
        if instance_id:
            self._watchdog.answered(instance_id)
        return answer

    def get(self, instance_id: str, payloads: bool = True) -> Instance | None:
        request = pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=payloads)
        for attempt in range(4):
            try:
                state = new_orchestration_state(instance_id, self._call("GetInstance", request))
                return to_instance(WorkflowState(state)) if state is not None else None
            except RpcError as error:
                details = (error.details() if hasattr(error, "details") else str(error)) or ""
                if "no such instance exists" in details:
                    return None
                if attempt == 3 or TORN_READ not in details:
                    raise
        return None

    def start(self, workflow: str, instance_id: str, workflow_input: dict) -> None:
        request = pb.CreateInstanceRequest(name=workflow, instanceId=instance_id, input=_text(workflow_input),
                                           version=wrappers_pb2.StringValue(value=""))
        try:
            self._call("StartInstance", request)
        except RpcError as error:
            if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED and self.get(instance_id, payloads=False) is not None:
                raise InstanceExists(instance_id) from error
            raise

    def raise_event(self, instance_id: str, event: str, data: dict) -> None:
        try:
            self._call("RaiseEvent", pb.RaiseEventRequest(instanceId=instance_id, name=event, input=_text(data)))
        except RpcError as error:
            # daprd 1.18.1 refuses an event for a stalled instance ("workflow is stalled", or
            # "actor is stalled" while its actor holds it) until a replica with its version takes it.
            if "is stalled" in ((error.details() if hasattr(error, "details") else None) or ""):
                raise InstanceStalled(instance_id) from error
            raise

    def terminate(self, instance_id: str, output: dict | None = None) -> None:
        self._call("TerminateInstance", pb.TerminateRequest(instanceId=instance_id, output=_text(output),
                                                            recursive=True))

    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        self._call("SuspendInstance", pb.SuspendRequest(instanceId=instance_id, reason=_reason(reason)))

    def resume(self, instance_id: str, reason: str | None = None) -> None:
        self._call("ResumeInstance", pb.ResumeRequest(instanceId=instance_id, reason=_reason(reason)))

    def purge(self, instance_id: str) -> None:
        self._call("PurgeInstances", pb.PurgeInstancesRequest(instanceId=instance_id, recursive=True))

    def list_ids(self, page_size: int = 500) -> Iterator[str]:
        token = None
        while True:
            request = pb.ListInstanceIDsRequest(pageSize=page_size)
            if token:
                request.continuationToken = token
            response = self._call("ListInstanceIDs", request)
            yield from response.instanceIds
            token = response.continuationToken
            if not token or not response.instanceIds:
                return

    def history(self, instance_id: str) -> list:
        """The instance's history events (protobuf HistoryEvent), oldest first."""
        response = self._call("GetInstanceHistory", pb.GetInstanceHistoryRequest(instanceId=instance_id))
        return list(response.events)

    def close(self) -> None:
        self._channel.close()
