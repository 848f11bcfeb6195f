"""Error bodies: every 4xx/5xx answers JSON with a `detail` message."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.services.tickets import TicketError


class ErrorBody(BaseModel):
    detail: str


def responses(*codes: int) -> dict:
    """OpenAPI entries for the error codes a route answers (400: a body that is not JSON)."""
    return {code: {"model": ErrorBody} for code in codes}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TicketError)
    async def _ticket_error(request: Request, error: TicketError) -> JSONResponse:
        return JSONResponse(status_code=error.status_code, content={"detail": error.message})
