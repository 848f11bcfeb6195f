"""Bearer tokens, roles and client scopes.

API_TOKENS = "name:role:token[:CUST001|CUST002],...". A client entry with the fourth field may act
only for the customers it names; a client entry without it is a trusted integration that files
for every customer. Tokens are kept and compared as SHA-256 digests (fixed length, constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

Role = Literal["client", "engineer", "operator"]
ROLES: tuple[Role, ...] = ("client", "engineer", "operator")
MIN_TOKEN_LENGTH = 16
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Published in the README: accepted only when DEV_MODE=true (API_TOKENS unset, or naming them).
DEVELOPMENT_TOKENS = ("dev-client:client:dev-client-token,dev-engineer:engineer:dev-engineer-token,"
                      "dev-operator:operator:dev-operator-token")


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_DEVELOPMENT_DIGESTS = frozenset(token_digest(entry.split(":")[2]) for entry in DEVELOPMENT_TOKENS.split(","))


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    # None: every customer (support staff, or a trusted integration client).
    customer_scope: frozenset[str] | None = None

    @property
    def is_scoped(self) -> bool:
        return self.customer_scope is not None

    def may_act_for(self, customer_id: str | None) -> bool:
        return self.customer_scope is None or customer_id in self.customer_scope

    def describe(self) -> str:
        """For the start-up log: who this is and what it reaches (never the token)."""
        if self.role != "client":
            return f"{self.name} ({self.role}, every customer)"
        if self.customer_scope is None:
            return f"{self.name} (client, trusted integration: files for every customer)"
        return f"{self.name} (client, customers {'|'.join(sorted(self.customer_scope))})"


class TokenConfigError(ValueError):
    pass


def parse_tokens(spec: str) -> list[tuple[str, Principal]]:
    """(token, principal) per entry; refuses malformed entries, duplicate names and tokens."""
    entries: list[tuple[str, Principal]] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    for position, raw in enumerate((part.strip() for part in spec.split(",")), start=1):
        if not raw:
            continue
        fields = raw.split(":")
        if len(fields) not in (3, 4) or not all(fields[:3]):
            raise TokenConfigError(f"API_TOKENS entry {position} must be name:role:token or "
                                   "name:client:token:CUST001|CUST002 (tokens may not contain ':' or ',')")
        name, role, token = fields[:3]
        if not _NAME.match(name):
            raise TokenConfigError(f"API_TOKENS entry {position}: name {name!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        if role not in ROLES:
            raise TokenConfigError(f"unknown role {role!r} for {name!r} (roles: {', '.join(ROLES)})")
        if len(token) < MIN_TOKEN_LENGTH:
            raise TokenConfigError(f"token of {name!r} is too short ({MIN_TOKEN_LENGTH} characters at least)")
        scope = None
        if len(fields) == 4:
            if role != "client":
                raise TokenConfigError(f"{name!r}: a customer scope applies to client entries only")
            scope = frozenset(c for c in fields[3].split("|") if c)
            bad = sorted(c for c in scope if not _CUSTOMER_ID.match(c))
            if not scope or bad:
                raise TokenConfigError(f"{name!r}: the scope must be customer ids separated by '|'"
                                       + (f" (not {', '.join(map(repr, bad))})" if bad else ""))
        if name in names:
            raise TokenConfigError(f"API_TOKENS names {name!r} twice")
        digest = token_digest(token)
        if digest in digests:
            raise TokenConfigError(f"the token of {name!r} is also another entry's token: each needs its own")
        names.add(name)
        digests.add(digest)
        entries.append((token, Principal(name, role, scope)))  # type: ignore[arg-type]
    if not entries:
        raise TokenConfigError("API_TOKENS has no entries")
    return entries


class TokenRegistry:
    def __init__(self, entries: list[tuple[str, Principal]]):
        self._entries = [(token_digest(token), principal) for token, principal in entries]

    @classmethod
    def from_settings(cls, api_tokens: str | None, dev_mode: bool) -> "TokenRegistry":
        if not api_tokens:
            if not dev_mode:
                raise TokenConfigError("API_TOKENS is not set: set it (see env.template), or set "
                                       "DEV_MODE=true on a development machine")
            api_tokens = DEVELOPMENT_TOKENS
        entries = parse_tokens(api_tokens)
        published = [p.name for token, p in entries if token_digest(token) in _DEVELOPMENT_DIGESTS]
        if published and not dev_mode:
            raise TokenConfigError(
                f"API_TOKENS gives {', '.join(published)} a published development token (dev-*-token); "
                "these are accepted only with DEV_MODE=true. Set long random tokens of your own "
                "(e.g. `openssl rand -hex 32`).")
        return cls(entries)

    @property
    def principals(self) -> list[Principal]:
        return [principal for _, principal in self._entries]

    def authenticate(self, presented: str) -> Principal | None:
        """Compares the presented token's digest with every entry's, each in constant time, and
        always all of them: neither the match nor its position shows in the time taken."""
        candidate = token_digest(presented)
        found = None
        for digest, principal in self._entries:
            if hmac.compare_digest(digest, candidate) and found is None:
                found = principal
        return found
