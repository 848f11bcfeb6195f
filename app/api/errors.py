"""Error bodies: every 4xx/5xx answers JSON with a `detail` message."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from grpc import RpcError, StatusCode
from pydantic import BaseModel

from app.readmodel.store import ReadModelUnavailable
from app.services.tickets import TicketError, held_stalled
from app.services.workflow_gateway import TORN_READ, InstanceStalled


logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    detail: str


class ValidationErrorBody(BaseModel):
    """422: a message, or FastAPI's list of validation errors (each with `msg` and `loc`)."""

    detail: str | list[dict[str, Any]]


def responses(*codes: int) -> dict:
    """OpenAPI entries for the error codes a route answers (400: a body that is not JSON); every
    route may also answer 413 (body over MAX_BODY_BYTES), 429 (over RATE_LIMIT) and 503 (the
    sidecar is unavailable)."""
    entries = {code: {"model": ValidationErrorBody if code == 422 else ErrorBody} for code in codes}
    entries[413] = {"model": ErrorBody, "description": "the request body is over MAX_BODY_BYTES (512 KiB by default)"}
    entries[429] = {"model": ErrorBody, "description": "this principal is over RATE_LIMIT; retry after Retry-After",
                    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}}
    entries[503] = {"model": ErrorBody, "description": "the Dapr sidecar (or a component behind it) is unavailable, "
                    "the workflow's state changed under the request (its host replica changing), "
                    "or filing is at MAX_ACTIVE_TICKETS (deciding at MAX_ACTIVE_DECISIONS); "
                    "retry after Retry-After",
                    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}}
    return entries


# What daprd passes on (as UNKNOWN or INTERNAL) when a component's own connection failed: a
# store or broker restarting, not a fault of the request.
_UNREACHABLE = ("connection refused", "connection reset", "broken pipe", "no such host",
                "bad connection", "unexpected eof", "server closed", "the database system is",
                "database is locked", "context deadline exceeded", "timeout", "not ready", "unavailable",
                # an actor (a workflow) whose host replica just went away, before placement moved it
                "address for actor", "actor is not", "placement", "no healthy", "error reading from server",
                # PostgreSQL restarting: SQLSTATE class 08 (connection exception) and 57P (the
                # server shut down or is starting), e.g. "terminating connection due to
                # unexpected postmaster exit (SQLSTATE 57P01)"
                "sqlstate 08", "sqlstate 57p")


# What daprd answers when the workflow's own state was written by another host between its read
# and its write ("possible etag mismatch. error from state store"): seen raising a decision while
# a placement node was killed and the workflow's actor moved between replicas. Nothing was
# applied; the same request may be sent again (a decision is recorded first and raised again).
_CONCURRENT_WRITE = ("etag mismatch",)


def _details(error: RpcError) -> str:
    return ((error.details() if hasattr(error, "details") else None) or "").lower()


def concurrent_state_write(error: RpcError) -> bool:
    code = error.code() if hasattr(error, "code") else None
    return code in (StatusCode.UNKNOWN, StatusCode.INTERNAL, StatusCode.ABORTED) \
        and any(marker in _details(error) for marker in _CONCURRENT_WRITE)


def component_unreachable(error: RpcError) -> bool:
    code = error.code() if hasattr(error, "code") else None
    if code not in (StatusCode.UNKNOWN, StatusCode.INTERNAL):
        return False
    return any(marker in _details(error) for marker in _UNREACHABLE)


def state_read_torn(error: RpcError) -> bool:
    """daprd's read of a workflow's state found its metadata naming an entry the store does not
    hold (the gateway has read it again already): torn by a save between its two reads, or left
    so by a stall with an event in the inbox."""
    code = error.code() if hasattr(error, "code") else None
    return code in (StatusCode.UNKNOWN, StatusCode.INTERNAL) and TORN_READ in _details(error)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TicketError)
    async def _ticket_error(request: Request, error: TicketError) -> JSONResponse:
        headers = {"Retry-After": str(getattr(error, "retry_after", 2))} if error.status_code == 503 else None
        return JSONResponse(status_code=error.status_code, content={"detail": error.message}, headers=headers)

    @app.exception_handler(InstanceStalled)
    async def _stalled(request: Request, error: InstanceStalled) -> JSONResponse:
        # An event refused for a stalled instance (a decision, a cancel, an operator's event).
        return await _ticket_error(request, held_stalled(str(error)))

    @app.exception_handler(ReadModelUnavailable)
    async def _read_model_unavailable(request: Request, error: ReadModelUnavailable) -> JSONResponse:
        # PostgreSQL restarting under the views: the same request answers once it is back.
        logger.warning("read model unavailable", extra={"path": request.url.path, "error": str(error)})
        return JSONResponse(status_code=503, headers={"Retry-After": "2"},
                            content={"detail": "the tickets' read model (its database) is unavailable; "
                                               "retry shortly"})

    @app.exception_handler(RpcError)
    async def _sidecar_error(request: Request, error: RpcError) -> JSONResponse:
        # The sidecar, or the store or broker behind it, is down or restarting: say so (a JSON
        # 503 the client may retry), not a bare "Internal Server Error".
        code = error.code() if hasattr(error, "code") else None
        # CANCELLED: daprd reset the call's stream (seen for a decision raised to a workflow the
        # runtime had wedged): nothing known applied, and every call the API makes may be sent again.
        if code in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED, StatusCode.RESOURCE_EXHAUSTED,
                    StatusCode.CANCELLED):
            return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                                content={"detail": "the Dapr sidecar is unavailable; retry shortly"})
        if component_unreachable(error):
            return JSONResponse(status_code=503, headers={"Retry-After": "2"},
                                content={"detail": "a store or broker behind the Dapr sidecar is unavailable; "
                                                   "retry shortly"})
        if state_read_torn(error):
            return JSONResponse(status_code=503, headers={"Retry-After": "2"},
                                content={"detail": "the runtime could not read this workflow's state (an entry "
                                                   "its metadata names is missing from the store); retry shortly. "
                                                   "If it lasts, the instance needs an operator (/ops)"})
        if concurrent_state_write(error):
            return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                                content={"detail": "the workflow's state changed under this request (its host "
                                                   "replica is changing); nothing was applied: retry shortly"})
        details = (error.details() if hasattr(error, "details") else None) or ""
        logger.warning("sidecar error answered 500", extra={"path": request.url.path, "code": code.name if code else None,
                                                           "details": " ".join(details.split())[:300]})
        return JSONResponse(status_code=500, content={"detail": f"sidecar error: {code.name if code else 'unknown'}"})
