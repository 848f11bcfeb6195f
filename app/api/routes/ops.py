"""Operators' API over the workflow runtime: list and inspect every instance (tickets and their
agent child runs) with its history, act on one (raise an event, suspend, resume, terminate,
purge, rerun from an event), purge finished ones in bulk, and see the system's health.
Engineers and operators read; only operators act. Every action is audited
(app/services/operations.py, shared with the console and `python -m app.ops`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api.auth import CanInspect, require
from app.api.deps import ReadModelDep, RecordsDep, SettingsDep, WorkflowsDep
from app.api.errors import responses
from app.core.config import parse_duration
from app.core.security import Principal
from app.services import operations
from app.services.operations import Actor
from app.services.tickets import TicketError

router = APIRouter(prefix="/ops", tags=["operations"])

CanOperate = Annotated[Principal, Depends(require("operator"))]
# Instance ids: ticket ids and agent run ids (`{ticket}.expert-1`); never a slash.
INSTANCE_ID = Path(pattern=r"^[A-Za-z0-9_.-]{1,200}$")
RuntimeStatus = Literal["running", "pending", "suspended", "completed", "failed", "terminated", "stalled"]


class BadDuration(TicketError):
    status_code = 422


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.name, principal.role)


# Exactly what parse_duration reads (the document states every constraint the server enforces).
DURATION_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,6})?(ms|s|m|h|d)?$"


def _duration(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    if float(value.rstrip("mshd") or 0) == 0:
        return 0.0  # "0s": no bound
    try:
        return parse_duration(value)
    except ValueError as error:
        raise BadDuration(f"{name}: {error}") from None


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)


class RaisedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: Any = Field(default=None, description="the event's payload (any JSON)")


class BulkPurge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    older_than_days: float = Field(ge=0, le=36500, description="purge finished instances last updated this long ago")


class Rerun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: int = Field(ge=0, description="the eventId of the activity's taskScheduled event")
    new_instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


@router.get("/instances", responses=responses(401, 403, 422))
def list_instances(_: CanInspect, workflows: WorkflowsDep, settings: SettingsDep,
                   status: RuntimeStatus | None = None,
                   older_than: str | None = Query(None, pattern=DURATION_PATTERN,
                                                  description="created at least this long ago (30s, 2h, 3d)"),
                   newer_than: str | None = Query(None, pattern=DURATION_PATTERN,
                                                  description="created at most this long ago"),
                   stuck: bool = Query(False, description="only the instances without progress for STUCK_AFTER"),
                   version: str | None = Query(None, pattern=r"^[A-Za-z0-9_.-]{1,40}$",
                                               description="only tickets on this workflow version (v1, v2)")) -> dict:
    listing = operations.list_instances(workflows, settings, status=status,
                                        older_than=_duration("older_than", older_than),
                                        newer_than=_duration("newer_than", newer_than), stuck_only=stuck,
                                        version=version)
    return {**listing.as_dict(), "stuck_after_seconds": settings.stuck_after}


@router.get("/instances/{instance_id}", responses=responses(401, 403, 404, 422))
def instance(_: CanInspect, workflows: WorkflowsDep, records: RecordsDep, settings: SettingsDep,
             instance_id: str = INSTANCE_ID) -> dict:
    return operations.instance_detail(workflows, records, settings, instance_id)


@router.get("/instances/{instance_id}/audit", responses=responses(401, 403, 422))
def audit(_: CanInspect, records: RecordsDep, instance_id: str = INSTANCE_ID) -> dict:
    return {"instance_id": instance_id, "audit": operations.read_audit(records, instance_id)}


@router.post("/instances/{instance_id}/events/{event}", responses=responses(400, 401, 403, 404, 409, 422))
def raise_event(principal: CanOperate, workflows: WorkflowsDep, records: RecordsDep,
                instance_id: str = INSTANCE_ID, event: str = Path(pattern=r"^[A-Za-z0-9_.:-]{1,200}$"),
                body: RaisedEvent = Body(default_factory=RaisedEvent)) -> dict:
    return operations.raise_event(workflows, records, actor_of(principal), instance_id, event, body.data)


@router.post("/instances/{instance_id}/suspend", responses=responses(400, 401, 403, 404, 409, 422))
def suspend(principal: CanOperate, workflows: WorkflowsDep, records: RecordsDep, read_model: ReadModelDep,
            instance_id: str = INSTANCE_ID, body: Reason = Body(default_factory=Reason)) -> dict:
    return operations.suspend(workflows, records, read_model, actor_of(principal), instance_id, body.reason)


@router.post("/instances/{instance_id}/resume", responses=responses(400, 401, 403, 404, 409, 422))
def resume(principal: CanOperate, workflows: WorkflowsDep, records: RecordsDep, read_model: ReadModelDep,
           instance_id: str = INSTANCE_ID, body: Reason = Body(default_factory=Reason)) -> dict:
    return operations.resume(workflows, records, read_model, actor_of(principal), instance_id, body.reason)


@router.post("/instances/{instance_id}/terminate", responses=responses(400, 401, 403, 404, 409, 422))
def terminate(principal: CanOperate, workflows: WorkflowsDep, records: RecordsDep, read_model: ReadModelDep,
              instance_id: str = INSTANCE_ID, body: Reason = Body(default_factory=Reason)) -> dict:
    return operations.terminate(workflows, records, read_model, actor_of(principal), instance_id, body.reason)


@router.post("/instances/{instance_id}/purge", responses=responses(401, 403, 404, 409, 422))
def purge(principal: CanOperate, workflows: WorkflowsDep, records: RecordsDep, read_model: ReadModelDep,
          instance_id: str = INSTANCE_ID) -> dict:
    return operations.purge(workflows, records, read_model, actor_of(principal), instance_id)


@router.post("/instances/{instance_id}/rerun", responses=responses(400, 401, 403, 404, 409, 422))
def rerun(principal: CanOperate, workflows: WorkflowsDep, records: RecordsDep, body: Rerun,
          instance_id: str = INSTANCE_ID) -> dict:
    return operations.rerun_from_event(workflows, records, actor_of(principal), instance_id, body.event_id,
                                       body.new_instance_id)


@router.post("/purge", responses=responses(400, 401, 403, 422))
def purge_finished(principal: CanOperate, workflows: WorkflowsDep, records: RecordsDep, read_model: ReadModelDep,
                   body: BulkPurge) -> dict:
    return operations.purge_finished(workflows, records, read_model, actor_of(principal), body.older_than_days)


@router.get("/system", responses=responses(401, 403))
def system(_: CanInspect, workflows: WorkflowsDep, read_model: ReadModelDep,
           settings: SettingsDep) -> dict:
    return operations.system_overview(workflows, read_model, settings)
