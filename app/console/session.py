"""The console's sign-in: the same bearer tokens as the API, kept in a signed, HttpOnly,
SameSite=Strict cookie, checked against the token registry on every request (a token removed
from API_TOKENS ends its sessions at the next start). Every form that changes something carries
the session's CSRF token (a hidden field, or the X-CSRF-Token header htmx sends); the sign-in
form carries a nonce of its own cookie."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from fastapi import HTTPException, Request, Response, status
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.api.auth import token_registry
from app.core.config import get_settings
from app.core.security import Principal

SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_MAX_AGE = 30 * 60


@lru_cache
def _secret() -> str:
    # Unset: one per process, so a restart signs everyone out (documented in env.template).
    return get_settings().console_secret or secrets.token_urlsafe(32)


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(), salt=salt)


@dataclass(frozen=True)
class ConsoleUser:
    principal: Principal
    csrf: str

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def role(self) -> str:
        return self.principal.role


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def sign_in(response: Response, request: Request, token: str) -> Principal | None:
    """Sets the session cookie when the token is valid; the principal, or None."""
    principal = token_registry().authenticate(token)
    if principal is None:
        return None
    value = _serializer("console-session").dumps({"token": token, "csrf": secrets.token_urlsafe(24)})
    response.set_cookie(SESSION_COOKIE, value, max_age=int(get_settings().console_session_max_age),
                        httponly=True, samesite="strict", secure=_secure(request), path="/console")
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return principal


def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/console")


def current_user(request: Request) -> ConsoleUser | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer("console-session").loads(raw, max_age=get_settings().console_session_max_age)
    except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
        return None
    principal = token_registry().authenticate(str(data.get("token", "")))
    return ConsoleUser(principal, str(data.get("csrf", ""))) if principal else None


def require_user(request: Request) -> ConsoleUser:
    """The signed-in user; otherwise a redirect to the sign-in page (then back here)."""
    user = current_user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(status.HTTP_303_SEE_OTHER, "sign in first",
                            headers={"Location": f"/console/login?next={quote(target, safe='')}"})
    return user


async def check_csrf(request: Request, user: ConsoleUser) -> None:
    """403 unless the request carries the session's CSRF token."""
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        form = await request.form()
        sent = str(form.get(CSRF_FIELD, ""))
    if not (user.csrf and sent and hmac.compare_digest(sent, user.csrf)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token: reload the page and retry")


# -- the sign-in form's own nonce (no session exists yet) ----------------------------------------
def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def set_login_nonce(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(LOGIN_COOKIE, _serializer("console-login").dumps(nonce), max_age=LOGIN_MAX_AGE,
                        httponly=True, samesite="strict", secure=_secure(request), path="/console")


def login_nonce_valid(request: Request, sent: str) -> bool:
    raw = request.cookies.get(LOGIN_COOKIE)
    if not raw or not sent:
        return False
    try:
        expected = _serializer("console-login").loads(raw, max_age=LOGIN_MAX_AGE)
    except BadSignature:
        return False
    return hmac.compare_digest(str(expected), sent)


def safe_next(target: str | None) -> str:
    """Only a path inside the console (never another site)."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/inbox"
