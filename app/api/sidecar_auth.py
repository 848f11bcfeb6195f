"""daprd and the app authenticate each other.

app -> daprd: DAPR_API_TOKEN, which the Dapr SDK sends as `dapr-api-token` on every call; daprd,
started with the same variable, answers 401 to calls without it. daprd -> app: APP_API_TOKEN,
which daprd sends as `dapr-api-token` on every call to the app; `require_sidecar` admits only
those calls to the endpoints meant for daprd (subscriptions and message delivery).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Mapping

from fastapi import Header, HTTPException, Request, status

from app.core.config import Settings, get_settings
from app.core.security import MIN_TOKEN_LENGTH, token_digest

logger = logging.getLogger(__name__)

SIDECAR_TOKEN_HEADER = "dapr-api-token"


class SidecarTokenError(ValueError):
    pass


def check_sidecar_tokens(settings: Settings, environ: Mapping[str, str] = os.environ) -> None:
    """Refuses to start without both tokens: without them anyone reaching daprd's ports, or the
    app's, could go around the API."""
    dapr_token = environ.get("DAPR_API_TOKEN", "")
    app_token = settings.app_api_token.get_secret_value() if settings.app_api_token else ""
    for variable, value in (("DAPR_API_TOKEN", dapr_token), ("APP_API_TOKEN", app_token)):
        if not value:
            raise SidecarTokenError(
                f"{variable} is not set: daprd and the app need the same DAPR_API_TOKEN and APP_API_TOKEN "
                "(scripts/run.sh generates both into .data/secrets/; see the README's Security section)")
        if len(value) < MIN_TOKEN_LENGTH:
            raise SidecarTokenError(f"{variable} is too short ({MIN_TOKEN_LENGTH} characters at least)")
    if hmac.compare_digest(token_digest(dapr_token), token_digest(app_token)):
        raise SidecarTokenError("DAPR_API_TOKEN and APP_API_TOKEN must differ (one per direction)")


def require_sidecar(request: Request,
                    dapr_api_token: str | None = Header(default=None, alias=SIDECAR_TOKEN_HEADER)) -> None:
    """A dependency: only daprd, which carries APP_API_TOKEN, may call this route."""
    expected = get_settings().app_api_token
    if not (expected and dapr_api_token
            and hmac.compare_digest(token_digest(dapr_api_token), token_digest(expected.get_secret_value()))):
        logger.warning("access denied", extra={
            "reason": "missing app token" if not dapr_api_token else "invalid app token",
            "method": request.method, "path": request.url.path,
            "remote": request.client.host if request.client else None})
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "only the Dapr sidecar may call this endpoint")
