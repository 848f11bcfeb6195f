"""The support engineers' console: sign-in, the inbox (with server-sent updates), claims, the
ticket page and decisions. Decisions go through the same service functions as the REST API
(app/services/tickets.py), so the console can do nothing the API would refuse."""

from __future__ import annotations

import itertools
import uuid
from typing import Annotated
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sse_starlette import EventSourceResponse

from app.api.deps import (CustomersDep, ReadyReadModelDep, RecordsDep, ServicesDep, SettingsDep, WorkflowsDep,
                          get_ticket_changes)
from app.console import views
from app.console.rendering import page
from app.console.session import (CSRF_FIELD, ConsoleUser, check_csrf, current_user, login_nonce_valid,
                                 new_login_nonce, require_user, safe_next, set_login_nonce, sign_in, sign_out)
from app.domain.decision import DecisionRequest
from app.domain.ticket import TICKET_ID_PATTERN
from app.knowledge.articles import load_articles
from app.readmodel.store import ReadModel
from app.services import operations, tickets
from app.services.operations import Actor
from app.services.tickets import TicketError
from app.workflows.contracts import Proposal

router = APIRouter(prefix="/console", include_in_schema=False)
User = Annotated[ConsoleUser, Depends(require_user)]

# Bumped by the console's own writes that the read model does not see (claims, operator
# actions), so the pushed signature changes for them too.
_local_changes = itertools.count(1)
_local_version = [0]


def note_local_change() -> None:
    _local_version[0] = next(_local_changes)


def signature(read_model: ReadModel, ticket_id: str | None = None, workflows=None) -> str:
    """What the pushed signature is made of. A ticket page shows its workflow's own stage, which
    can move after the read model's last change (the final record is written just before the
    workflow completes), so a ticket's signature includes the instance's status and update time."""
    base = f"{read_model.last_change(ticket_id)}/{_local_version[0]}"
    if ticket_id is None or workflows is None:
        return base
    instance = workflows.get(ticket_id, payloads=False)
    return f"{base}/{instance.runtime_status}/{instance.last_updated_at}" if instance else f"{base}/-"


def forbidden(request: Request, user: ConsoleUser, message: str):
    return page(request, "forbidden.html", user, status_code=403, message=message)


# -- sign-in ------------------------------------------------------------------------------------
@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse("/console/inbox", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None, error: str | None = None):
    nonce = new_login_nonce()
    response = page(request, "login.html", None, next=safe_next(next), nonce=nonce,
                    error="That token is not valid." if error == "invalid" else
                    "The sign-in form expired; try again." if error == "expired" else None,
                    status_code=401 if error else 200)
    set_login_nonce(response, request, nonce)
    return response


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=500)] = "",
          nonce: Annotated[str, Form(max_length=200)] = "", next: Annotated[str, Form(max_length=2000)] = ""):
    if not login_nonce_valid(request, nonce):
        return RedirectResponse(f"/console/login?{urlencode({'next': safe_next(next), 'error': 'expired'})}", 303)
    response = RedirectResponse(safe_next(next), status_code=303)
    if sign_in(response, request, token.strip()) is None:
        return RedirectResponse(f"/console/login?{urlencode({'next': safe_next(next), 'error': 'invalid'})}", 303)
    return response


@router.post("/logout")
async def logout(request: Request, user: User):
    await check_csrf(request, user)
    response = RedirectResponse("/console/login", status_code=303)
    sign_out(response)
    return response


# -- inbox --------------------------------------------------------------------------------------
@router.get("/inbox")
def inbox(request: Request, user: User, read_model: ReadyReadModelDep, records: RecordsDep):
    if user.role == "client":
        return forbidden(request, user, "A client token may open its own tickets (below) but not the inbox.")
    params = dict(request.query_params)
    filters = views.inbox_filters(params)
    q = (params.get("q") or "").strip()[:200]
    rows = views.inbox_rows(read_model, records, filters, q)
    return page(request, "inbox.html", user, nav="inbox", rows=rows, params=params, q=q,
                signature=signature(read_model), events_url="/console/events")


@router.get("/open")
def open_ticket(user: User, ticket_id: str = ""):
    import re

    ticket_id = ticket_id.strip()
    if not re.fullmatch(TICKET_ID_PATTERN.strip("^$"), ticket_id or "-"):
        return RedirectResponse("/console/inbox", status_code=303)
    return RedirectResponse(f"/console/tickets/{ticket_id}", status_code=303)


@router.get("/events")
async def events(request: Request, user: User, read_model: ReadyReadModelDep, workflows: WorkflowsDep,
                 ticket: str | None = None):
    """Pushes the read model's change signature (every ~0.5 s while it changes): the page
    reloads its live parts when it differs from the one it was rendered with."""
    ticket = ticket if ticket and len(ticket) <= 64 else None

    async def stream():
        last = None
        while True:
            current = await anyio.to_thread.run_sync(signature, read_model, ticket, workflows)
            if current != last:
                yield {"event": "change", "data": current, "retry": 1000}
                last = current
            await anyio.sleep(0.5)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


# -- the ticket page ----------------------------------------------------------------------------
def _ticket_view(request: Request, user: ConsoleUser, services, workflows, read_model, settings, ticket_id: str,
                 message: tuple[str, str] | None = None, status_code: int = 200, form: dict | None = None):
    try:
        data = views.ticket_page(workflows, read_model, services.records, services.customers, services.systems,
                                 settings, user.principal, ticket_id)
    except TicketError as error:
        return page(request, "not_found.html", user, status_code=error.status_code, message=error.message)
    waiting_proposal = None
    if data.revisions and data.status.awaiting_decision:
        waiting_proposal = Proposal.model_validate(data.revisions[-1]["proposal"]).as_text()
    if request.headers.get("HX-Request") and status_code >= 400:
        status_code = 200  # htmx swaps only 2xx answers: the message is in the page
    return page(request, "ticket.html", user, status_code=status_code, nav="inbox", t=data, message=message,
                proposal_text=waiting_proposal, form=form or {}, idempotency_key=uuid.uuid4().hex,
                signature=signature(read_model, ticket_id, workflows), events_url=f"/console/events?ticket={ticket_id}")


@router.get("/tickets/{ticket_id}")
def ticket(request: Request, user: User, services: ServicesDep, workflows: WorkflowsDep,
           read_model: ReadyReadModelDep, settings: SettingsDep, ticket_id: str, done: str | None = None):
    messages = {"claimed": "You hold this ticket.", "unclaimed": "You released this ticket."}
    message = ("ok", messages[done]) if done in messages else None
    return _ticket_view(request, user, services, workflows, read_model, settings, ticket_id, message)


@router.post("/tickets/{ticket_id}/claim")
async def claim(request: Request, user: User, services: ServicesDep, workflows: WorkflowsDep,
                read_model: ReadyReadModelDep, settings: SettingsDep, ticket_id: str):
    return await _claim_action(request, user, services, workflows, read_model, settings, ticket_id, take=True)


@router.post("/tickets/{ticket_id}/unclaim")
async def unclaim(request: Request, user: User, services: ServicesDep, workflows: WorkflowsDep,
                  read_model: ReadyReadModelDep, settings: SettingsDep, ticket_id: str):
    return await _claim_action(request, user, services, workflows, read_model, settings, ticket_id, take=False)


async def _claim_action(request, user, services, workflows, read_model, settings, ticket_id: str, take: bool):
    if user.role != "engineer":
        return forbidden(request, user, f"role {user.role!r} may not claim tickets (needs engineer)")
    await check_csrf(request, user)
    try:
        tickets.ticket_instance(workflows, ticket_id)
        actor = Actor(user.name, user.role)
        await anyio.to_thread.run_sync(operations.claim if take else operations.unclaim, services.records,
                                       ticket_id, actor)
    except TicketError as error:
        return _ticket_view(request, user, services, workflows, read_model, settings, ticket_id,
                            ("conflict", error.message), error.status_code)
    note_local_change()
    if request.headers.get("HX-Request"):
        return _ticket_view(request, user, services, workflows, read_model, settings, ticket_id,
                            ("ok", "You hold this ticket." if take else "You released this ticket."))
    return RedirectResponse(f"/console/tickets/{ticket_id}?done={'claimed' if take else 'unclaimed'}", 303)


DECISIONS = {"approve", "approve_edited", "reject", "cancel"}


@router.post("/tickets/{ticket_id}/decide")
async def decide(request: Request, user: User, services: ServicesDep, workflows: WorkflowsDep,
                 read_model: ReadyReadModelDep, settings: SettingsDep, ticket_id: str):
    form = await request.form()
    action = str(form.get("action", ""))
    if action not in DECISIONS:
        return _ticket_view(request, user, services, workflows, read_model, settings, ticket_id,
                            ("error", f"unknown action {action!r}"), 422)
    may = ("engineer", "operator") if action == "cancel" else ("engineer",)
    if user.role not in may:
        return forbidden(request, user, f"role {user.role!r} may not {action.replace('_', ' ')} "
                                        f"(needs {' or '.join(may)})")
    await check_csrf(request, user)
    fields = {k: str(form.get(k, "")) for k in ("final_solution", "support_notes", "reason", "revision",
                                                  "idempotency_key")}
    try:
        revision = int(fields["revision"]) if fields["revision"] else None
        if action == "cancel":
            await anyio.to_thread.run_sync(tickets.cancel_ticket, workflows, ticket_id, user.name,
                                           fields["reason"].strip() or None)
            message = ("ok", "Cancel requested: the workflow tells the customer and ends the ticket.")
        else:
            if action == "reject" and not fields["support_notes"].strip():
                raise ValueError("a rejection needs notes for the revision")
            if action == "approve_edited" and not fields["final_solution"].strip():
                raise ValueError("the edited solution is empty")
            body = DecisionRequest(approved=action != "reject", revision=revision,
                                   final_solution=fields["final_solution"] if action == "approve_edited" else None,
                                   support_notes=fields["support_notes"] or None)
            accepted = await anyio.to_thread.run_sync(
                lambda: tickets.submit_decision(workflows, services.records, settings, ticket_id, body, user.name,
                                                get_ticket_changes(request, read_model),
                                                fields["idempotency_key"] or None))
            verb = "Rejected: a revised proposal is on its way" if action == "reject" else "Approved"
            message = ("ok", f"{verb} (revision {accepted.revision}, {accepted.status}; stage now {accepted.stage}).")
    except TicketError as error:
        kind = "conflict" if error.status_code == 409 else "error"
        return _ticket_view(request, user, services, workflows, read_model, settings, ticket_id,
                            (kind, error.message), error.status_code, form=fields)
    except (ValueError, ValidationError) as error:
        text = "; ".join(e["msg"] for e in error.errors()) if isinstance(error, ValidationError) else str(error)
        return _ticket_view(request, user, services, workflows, read_model, settings, ticket_id,
                            ("error", text), 422, form=fields)
    return _ticket_view(request, user, services, workflows, read_model, settings, ticket_id, message)


# -- articles -----------------------------------------------------------------------------------
@router.get("/articles/{slug}")
def article(request: Request, user: User, slug: str):
    found = load_articles().get(slug)
    if found is None:
        return page(request, "not_found.html", user, status_code=404, message=f"no article {slug!r}")
    return page(request, "article.html", user, article=found)



