"""Authentication, role checks and per-principal rate limits for /support/* routes.

Every refusal is logged with the principal's name and role (when known) and the path, never
with the token; the 403 body does not say which roles would have been admitted.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.rate_limit import RateLimiter
from app.core.config import get_settings
from app.core.security import Principal, Role, TokenRegistry

logger = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token> (API_TOKENS)")


@lru_cache
def token_registry() -> TokenRegistry:
    settings = get_settings()
    return TokenRegistry.from_settings(settings.api_tokens, settings.dev_mode)


@lru_cache
def rate_limiter() -> RateLimiter:
    return RateLimiter(get_settings().rate_limit)


def log_denied(request: Request, reason: str, principal: Principal | None = None, **fields) -> None:
    logger.warning("access denied", extra={
        "reason": reason, "method": request.method, "path": request.url.path,
        "principal": principal.name if principal else None, "role": principal.role if principal else None,
        "remote": request.client.host if request.client else None, **fields})


def _limit(request: Request, key: str, principal: Principal | None) -> None:
    retry_after = rate_limiter().hit(key)
    if retry_after is not None:
        log_denied(request, "rate limited", principal)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many requests; retry later",
                            headers={"Retry-After": str(retry_after)})


def current_principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    principal = token_registry().authenticate(credentials.credentials) if credentials else None
    if principal is None:
        # Guessing tokens costs from the same budget per client address as a principal's calls.
        _limit(request, f"anonymous:{request.client.host if request.client else '?'}", None)
        log_denied(request, "missing bearer token" if credentials is None else "invalid bearer token")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    _limit(request, f"principal:{principal.name}", principal)
    return principal


def require(*roles: Role):
    """A dependency admitting only the given roles (403 for the others)."""

    def check(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            log_denied(request, "role not permitted", principal)
            # Names the caller's own role only, not the roles that would be admitted.
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not do this")
        return principal

    return check


CanFile = Annotated[Principal, Depends(require("client", "engineer"))]
CanRead = Annotated[Principal, Depends(require("client", "engineer", "operator"))]
CanDecide = Annotated[Principal, Depends(require("engineer"))]
CanCancel = Annotated[Principal, Depends(require("engineer", "operator"))]
CanInspect = Annotated[Principal, Depends(require("engineer", "operator"))]
