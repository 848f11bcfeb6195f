"""The operators' console pages: every workflow instance, one instance with its history and
audit, the actions (each confirmed on a page of its own, audited, operators only) and the
system page. The data and the actions are app/services/operations.py, as for /ops and
`python -m app.ops`."""

from __future__ import annotations

import json
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from app.api.deps import ReadModelDep, RecordsDep, SettingsDep, WorkflowsDep
from app.console.rendering import page
from app.console.routes import forbidden, note_local_change
from app.console.session import ConsoleUser, check_csrf, require_user
from app.core.config import parse_duration
from app.services import operations
from app.services.operations import Actor
from app.services.tickets import TicketError

router = APIRouter(prefix="/console/ops", include_in_schema=False)
User = Annotated[ConsoleUser, Depends(require_user)]

ACTIONS = {
    "raise_event": "Raise an event",
    "suspend": "Suspend",
    "resume": "Resume",
    "terminate": "Terminate",
    "purge": "Purge",
    "rerun": "Rerun from an event",
}
DONE = {"raise_event": "Event raised.", "suspend": "Suspended.", "resume": "Resumed.",
        "terminate": "Terminated.", "purge": "Purged.", "rerun": "Rerun started."}


def _readers_only(request: Request, user: ConsoleUser):
    if user.role not in ("engineer", "operator"):
        return forbidden(request, user, f"role {user.role!r} may not inspect workflows (needs engineer or operator)")
    return None


@router.get("/workflows")
def workflows_page(request: Request, user: User, workflows: WorkflowsDep, settings: SettingsDep):
    if (refused := _readers_only(request, user)) is not None:
        return refused
    params = dict(request.query_params)
    error = None
    try:
        older = parse_duration(params["older_than"]) if params.get("older_than") else None
        newer = parse_duration(params["newer_than"]) if params.get("newer_than") else None
    except ValueError as problem:
        older = newer = None
        error = f"age filter: {problem}"
    status = params.get("status") or None
    if status not in (None, *operations.RUNTIME_STATUSES):
        status, error = None, f"unknown status {params.get('status')!r}"
    version = (params.get("version") or "").strip()[:40] or None
    listing = operations.list_instances(workflows, settings, status=status, older_than=older, newer_than=newer,
                                        stuck_only=params.get("stuck") in ("1", "on", "true"), version=version)
    return page(request, "ops_workflows.html", user, nav="workflows", listing=listing, params=params,
                statuses=operations.RUNTIME_STATUSES, error=error, stuck_after=settings.stuck_after)


@router.get("/instances/{instance_id}")
def instance_page(request: Request, user: User, workflows: WorkflowsDep, records: RecordsDep, settings: SettingsDep,
                  instance_id: str, done: str | None = None):
    if (refused := _readers_only(request, user)) is not None:
        return refused
    return _instance_view(request, user, workflows, records, settings, instance_id,
                          ("ok", DONE[done]) if done in DONE else None)


def _instance_view(request, user, workflows, records, settings, instance_id, message=None, status_code=200):
    try:
        detail = operations.instance_detail(workflows, records, settings, instance_id)
    except TicketError as error:
        audit = operations.read_audit(records, instance_id)
        return page(request, "not_found.html", user, status_code=error.status_code, message=error.message,
                    audit=audit, instance_id=instance_id)
    return page(request, "ops_instance.html", user, status_code=status_code, nav="workflows", d=detail,
                message=message, actions=ACTIONS)


@router.get("/instances/{instance_id}/confirm/{action}")
def confirm_page(request: Request, user: User, workflows: WorkflowsDep, records: RecordsDep, settings: SettingsDep,
                 instance_id: str, action: str, event_id: int | None = None):
    if action not in ACTIONS:
        return page(request, "not_found.html", user, status_code=404, message=f"no action {action!r}")
    if user.role != "operator":
        return forbidden(request, user, f"role {user.role!r} may not {ACTIONS[action].lower()} (needs operator)")
    try:
        instance = operations.get_instance(workflows, instance_id)
    except TicketError as error:
        return page(request, "not_found.html", user, status_code=error.status_code, message=error.message)
    return page(request, "ops_confirm.html", user, nav="workflows", instance=instance, action=action,
                label=ACTIONS[action], event_id=event_id)


@router.post("/instances/{instance_id}/actions/{action}")
async def act(request: Request, user: User, workflows: WorkflowsDep, records: RecordsDep, read_model: ReadModelDep,
              settings: SettingsDep, instance_id: str, action: str):
    if action not in ACTIONS:
        return page(request, "not_found.html", user, status_code=404, message=f"no action {action!r}")
    if user.role != "operator":
        return forbidden(request, user, f"role {user.role!r} may not {ACTIONS[action].lower()} (needs operator)")
    await check_csrf(request, user)
    form = await request.form()
    actor = Actor(user.name, user.role)
    reason = str(form.get("reason", "")).strip() or None
    try:
        if action == "raise_event":
            try:
                data = json.loads(str(form.get("data", "")).strip() or "null")
            except ValueError:
                raise TicketError("the event's payload is not JSON") from None
            call = lambda: operations.raise_event(workflows, records, actor, instance_id,  # noqa: E731
                                                  str(form.get("event", "")).strip(), data)
        elif action == "rerun":
            try:
                event_id = int(str(form.get("event_id", "")))
            except ValueError:
                raise TicketError("the event id must be a number") from None
            call = lambda: operations.rerun_from_event(workflows, records, actor, instance_id, event_id,  # noqa: E731
                                                       str(form.get("new_instance_id", "")).strip() or None)
        elif action == "purge":
            call = lambda: operations.purge(workflows, records, read_model, actor, instance_id)  # noqa: E731
        else:
            call = lambda: getattr(operations, action)(workflows, records, read_model, actor,  # noqa: E731
                                                       instance_id, reason)
        result = await anyio.to_thread.run_sync(call)
    except TicketError as error:
        return _instance_view(request, user, workflows, records, settings, instance_id,
                              ("conflict" if error.status_code == 409 else "error", error.message), error.status_code)
    note_local_change()
    if action == "rerun":
        return RedirectResponse(f"/console/ops/instances/{result['new_instance_id']}", status_code=303)
    if action == "purge":
        return RedirectResponse("/console/ops/workflows?done=purge", status_code=303)
    return RedirectResponse(f"/console/ops/instances/{instance_id}?done={action}", status_code=303)


@router.get("/purge")
def bulk_purge_form(request: Request, user: User):
    if user.role != "operator":
        return forbidden(request, user, f"role {user.role!r} may not purge (needs operator)")
    return page(request, "ops_purge.html", user, nav="workflows", result=None)


@router.post("/purge")
async def bulk_purge(request: Request, user: User, workflows: WorkflowsDep, records: RecordsDep,
                     read_model: ReadModelDep):
    if user.role != "operator":
        return forbidden(request, user, f"role {user.role!r} may not purge (needs operator)")
    await check_csrf(request, user)
    form = await request.form()
    try:
        days = float(str(form.get("older_than_days", "")))
        result = await anyio.to_thread.run_sync(lambda: operations.purge_finished(
            workflows, records, read_model, Actor(user.name, user.role), days))
    except (ValueError, TicketError) as error:
        message = error.message if isinstance(error, TicketError) else "older than: a number of days"
        return page(request, "ops_purge.html", user, status_code=422, nav="workflows", result=None, error=message)
    note_local_change()
    return page(request, "ops_purge.html", user, nav="workflows", result=result)


@router.get("/system")
def system_page(request: Request, user: User, workflows: WorkflowsDep, read_model: ReadModelDep,
                settings: SettingsDep):
    if (refused := _readers_only(request, user)) is not None:
        return refused
    overview = operations.system_overview(workflows, read_model, settings)
    return page(request, "ops_system.html", user, nav="system", s=overview)
