"""Authentication and role checks for /support/* routes."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.config import get_settings
from app.core.security import Principal, Role, TokenRegistry

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token> (API_TOKENS)")


@lru_cache
def token_registry() -> TokenRegistry:
    settings = get_settings()
    return TokenRegistry.from_settings(settings.api_tokens, settings.dev_mode)


def current_principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    principal = token_registry().authenticate(credentials.credentials) if credentials else None
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


def require(*roles: Role):
    """A dependency admitting only the given roles (403 for the others)."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role {principal.role!r} may not do this (needs {' or '.join(roles)})")
        return principal

    return check


CanFile = Annotated[Principal, Depends(require("client", "engineer"))]
CanRead = Annotated[Principal, Depends(require("client", "engineer", "operator"))]
CanDecide = Annotated[Principal, Depends(require("engineer"))]
CanCancel = Annotated[Principal, Depends(require("engineer", "operator"))]
CanInspect = Annotated[Principal, Depends(require("engineer", "operator"))]
