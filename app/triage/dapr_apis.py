"""Dapr's APIs as its documentation names them, and which of them the knowledge base covers.

The rubric sends a ticket that no topic addresses to a person (`other`). A question about a Dapr
API no article covers (the distributed lock, cryptography, a pluggable component) reads like
every Dapr ticket: sidecar, component, Redis, the app id. Retrieval finds an article that shares
those words, and the scope score and the category model keep it (on the blind sets posthoc46-48
the model gave such tickets 20-45 % `other`). Scope sends a ticket that names such an API to a
person (`app.triage.scope`). Of the 1,959 labelled tickets, the 24 that name one are all `other`.

Coverage is computed from the articles' text, never listed by hand: an article added on an API
makes that API covered, and its tickets stay in scope.
"""

from __future__ import annotations

import re
from functools import lru_cache

from app.knowledge.articles import load_articles

# The names customers and Dapr's docs give each API (docs.dapr.io, "Building blocks", and the
# "Pluggable components" and "State query API" pages). Patterns are case-insensitive.
DAPR_APIS: dict[str, tuple[str, ...]] = {
    "service invocation": (r"service invocation", r"invoke api"),
    "state management": (r"state store", r"state api", r"state management"),
    "publish and subscribe": (r"pub/?sub", r"publish and subscribe"),
    "bindings": (r"bindings?\b",),
    "actors": (r"\bactors?\b",),
    "secrets": (r"secret stores?", r"secrets api"),
    "workflow": (r"\bworkflows?\b",),
    "jobs": (r"jobs api", r"\bdapr jobs\b"),
    "conversation": (r"conversation api", r"conversation component"),
    "configuration": (r"configuration api", r"configuration stores?", r"subscribe to configuration",
                      r"configuration subscription"),
    "distributed lock": (r"distributed lock", r"lock api", r"lock (?:component|building block)",
                         r"\block\.(?:redis|\w+)", r"\btry_?lock\b", r"\bunlock api\b"),
    "cryptography": (r"cryptograph(?:y|ic) api", r"\bcrypto(?:graphy)? (?:api|component|building block)",
                     r"\bcrypto\.(?:dapr|azure|jwks|\w+)", r"dapr (?:cryptography|crypto)\b", r"subtle ?crypto"),
    "pluggable components": (r"pluggable components?",),
    "state query": (r"state query", r"query api", r"query (?:the )?state api"),
}


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    return {api: re.compile("|".join(f"(?:{p})" for p in names), re.IGNORECASE) for api, names in DAPR_APIS.items()}


@lru_cache(maxsize=1)
def uncovered_apis() -> frozenset[str]:
    """The APIs no article names."""
    text = "\n".join(f"{a.title}\n{' '.join(a.keywords)}\n{a.body}" for a in load_articles().values())
    return frozenset(api for api, pattern in _patterns().items() if not pattern.search(text))


def named_uncovered_api(description: str) -> str | None:
    """The first API the ticket names that no article covers, if any."""
    patterns = _patterns()
    for api in sorted(uncovered_apis()):
        if patterns[api].search(description):
            return api
    return None
