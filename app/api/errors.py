"""Error bodies: every 4xx/5xx answers JSON with a `detail` message."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from grpc import RpcError, StatusCode
from pydantic import BaseModel

from app.services.tickets import TicketError


class ErrorBody(BaseModel):
    detail: str


class ValidationErrorBody(BaseModel):
    """422: a message, or FastAPI's list of validation errors (each with `msg` and `loc`)."""

    detail: str | list[dict[str, Any]]


def responses(*codes: int) -> dict:
    """OpenAPI entries for the error codes a route answers (400: a body that is not JSON); every
    route may also answer 503 (the sidecar is unavailable)."""
    entries = {code: {"model": ValidationErrorBody if code == 422 else ErrorBody} for code in codes}
    entries[503] = {"model": ErrorBody, "description": "the Dapr sidecar is unavailable; retry"}
    return entries


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TicketError)
    async def _ticket_error(request: Request, error: TicketError) -> JSONResponse:
        return JSONResponse(status_code=error.status_code, content={"detail": error.message})

    @app.exception_handler(RpcError)
    async def _sidecar_error(request: Request, error: RpcError) -> JSONResponse:
        # The sidecar is down or restarting: say so (a JSON 503 the client may retry), not a
        # bare "Internal Server Error".
        code = error.code() if hasattr(error, "code") else None
        if code in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED):
            return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                                content={"detail": "the Dapr sidecar is unavailable; retry shortly"})
        return JSONResponse(status_code=500, content={"detail": f"sidecar error: {code.name if code else 'unknown'}"})
