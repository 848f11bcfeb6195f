"""Dapr's APIs as its documentation names them, and which of them the knowledge base covers.

The rubric sends a ticket that no topic addresses to a person (`other`). A question about a Dapr
API no article covers (the distributed lock, cryptography, a pluggable component) reads like
every Dapr ticket: sidecar, component, Redis, the app id. Retrieval finds an article that shares
those words, and the scope score and the category model keep it (on the blind sets posthoc46-48
the model gave such tickets 20-45 % `other`). Scope sends a ticket that names such an API to a
person (`app.triage.scope`). Every labelled ticket that names one (30 of 2,103 in session 16) is
labelled `other`.

Coverage is computed from the articles' text, never listed by hand: an article added on an API
makes that API covered, and its tickets stay in scope.
"""

from __future__ import annotations

import re
from functools import lru_cache

from app.knowledge.articles import load_articles

# The names customers and Dapr's docs give each API (docs.dapr.io, "Building blocks", and the
# "Pluggable components" and "State query API" pages): the API's name, its component types
# (`lock.redis`) and its HTTP route (`/v1.0-alpha1/lock`). Patterns are case-insensitive.
DAPR_APIS: dict[str, tuple[str, ...]] = {
    "service invocation": (r"service invocation", r"invoke api", r"/v1\.0/invoke\b"),
    "state management": (r"state store", r"state api", r"state management", r"/v1\.0/state\b"),
    "publish and subscribe": (r"pub/?sub", r"publish and subscribe", r"/v1\.0/publish\b"),
    "bindings": (r"bindings?\b",),
    "actors": (r"\bactors?\b",),
    "secrets": (r"secret stores?", r"secrets api", r"/v1\.0/secrets\b"),
    "workflow": (r"\bworkflows?\b",),
    "jobs": (r"jobs api", r"\bdapr jobs\b", r"/v1\.0-alpha1/jobs\b"),
    "conversation": (r"conversation api", r"conversation component", r"/v1\.0-alpha\d/conversation\b"),
    "configuration": (r"configuration (?:api|building block)", r"configuration stores?", r"subscribe to configuration",
                      r"configuration subscription", r"\bconfiguration\.(?!ya?ml\b|json\b)[a-z]\w*",
                      r"/v1\.0(?:-alpha1)?/configuration\b"),
    "distributed lock": (r"distributed lock", r"lock (?:api|component|building block)", r"\block\.(?!ya?ml\b|json\b|txt\b)[a-z]\w*",
                         r"\btry_?lock\b", r"\bunlock api\b", r"/v1\.0-alpha1/(?:un)?lock\b"),
    "cryptography": (r"cryptograph(?:y|ic) (?:api|building block)", r"\bcrypto(?:graphy)? (?:api|component|building block)",
                     r"\bcrypto\.(?:dapr|azure)\.\w+", r"dapr (?:cryptography|crypto)\b",
                     r"/v1\.0-alpha1/crypto\b"),
    "pluggable components": (r"pluggable components?",),
    "state query": (r"state query", r"query api", r"query (?:the )?state api", r"/v1\.0-alpha1/state/[\w-]+/query\b"),
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
