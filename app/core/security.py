"""Bearer tokens and roles (API_TOKENS = "name:role:token,...")."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

Role = Literal["client", "engineer", "operator"]
ROLES: tuple[Role, ...] = ("client", "engineer", "operator")

# The values env.template documents; only ever used when DEV_MODE=true and API_TOKENS is unset.
DEVELOPMENT_TOKENS = ("dev-client:client:dev-client-token,dev-engineer:engineer:dev-engineer-token,"
                      "dev-operator:operator:dev-operator-token")


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role


class TokenConfigError(ValueError):
    pass


def parse_tokens(spec: str) -> list[tuple[str, Principal]]:
    entries = []
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        name, sep, rest = raw.partition(":")
        role, sep2, token = rest.partition(":")
        if not (sep and sep2 and name and token):
            raise TokenConfigError("each API_TOKENS entry must be name:role:token")
        if role not in ROLES:
            raise TokenConfigError(f"unknown role {role!r} for {name!r} (roles: {', '.join(ROLES)})")
        if len(token) < 8:
            raise TokenConfigError(f"token of {name!r} is too short (8 characters at least)")
        entries.append((token, Principal(name, role)))  # type: ignore[arg-type]
    if not entries:
        raise TokenConfigError("API_TOKENS has no entries")
    return entries


class TokenRegistry:
    def __init__(self, entries: list[tuple[str, Principal]]):
        self._entries = [(token.encode(), principal) for token, principal in entries]

    @classmethod
    def from_settings(cls, api_tokens: str | None, dev_mode: bool) -> "TokenRegistry":
        if not api_tokens:
            if not dev_mode:
                raise TokenConfigError("API_TOKENS is not set: set it (see env.template), or set "
                                       "DEV_MODE=true on a development machine")
            api_tokens = DEVELOPMENT_TOKENS
        return cls(parse_tokens(api_tokens))

    def authenticate(self, presented: str) -> Principal | None:
        """Compares against every token in constant time, whatever matches first."""
        candidate = presented.encode()
        found = None
        for token, principal in self._entries:
            if hmac.compare_digest(token, candidate) and found is None:
                found = principal
        return found
