"""Knowledge-base queries for one ticket: several views of the same problem, fused later.

A long description dilutes its error message among narrative words; a bare list of error terms
loses the context that separates similar topics. Searching both, plus a variant carrying the
triaged category and the customer's platform, and fusing the rankings is more robust than any
single query.
"""

from __future__ import annotations

import re

from app.expert.problems import split_problems
from app.knowledge.search import STOPWORDS, get_knowledge_search

MIN_QUERIES = 3
MAX_CONDENSED_TERMS = 16

# Quotes must stand alone, so the apostrophes in "can't" or "it's" never open one.
_QUOTED = re.compile(r"(?<!\w)(?:'([^']{3,}?)'|\"([^\"]{3,}?)\"|`([^`]{2,}?)`)(?!\w)")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/\-]*[A-Za-z0-9]|[A-Za-z0-9]")
# Identifiers, codes and messages: anything with a digit, '_', '.', '/', ':' or an inner capital.
_IDENTIFIER = re.compile(r"\d|[_./:]|[a-z][A-Z]")
# Search stopwords plus narrative words that say nothing about the problem.
_FILLER = STOPWORDS | frozenset("""
without onto since it's done shall may might must still even ever please hi hello thanks thank
regards every gets getting keep keeps kept seem seems seemed happen happens happened today
yesterday morning hour hours ago anyway really actually somehow
""".split())


def build_kb_queries(description: str, category: str, system_info: dict | None,
                     notes: str | None = None) -> list[str]:
    """At least three distinct queries: the description as written, its condensed error terms,
    and the terms with the category and platform context; a ticket with several problems adds
    one query per problem, and engineer notes add one more."""
    raw = " ".join(description.split())
    condensed = condense(raw)
    context = " ".join(_platform_terms(system_info))
    views = [raw, condensed, f"{category} {condensed} {context}"]
    problems = split_problems(raw)
    if len(problems) > 1:
        views.extend(problem.text for problem in problems)
    if notes and notes.strip():
        views.append(f"{notes} {condensed}")
    # Used only when the description is too short to give three distinct views.
    fallbacks = [f"dapr {category} {raw}", f"dapr {category} troubleshooting",
                 f"{category} troubleshooting steps"]

    queries = _distinct(views)
    for fallback in fallbacks:
        if len(queries) >= MIN_QUERIES:
            break
        queries = _distinct([*queries, fallback])
    return queries


def condense(text: str) -> str:
    """Quoted messages and identifiers first, then the remaining content words, without filler."""
    quoted = [next(group for group in match.groups() if group) for match in _QUOTED.finditer(text)]
    words = [w for w in _WORD.findall(_QUOTED.sub(" ", text))
             if len(w) > 1 and w.lower() not in _FILLER]
    # A long ticket has more words than the query keeps: those no article holds (the customer's
    # own names, counts, days) cannot match, so they give up their place first.
    if len(dict.fromkeys(words)) > MAX_CONDENSED_TERMS:
        search = get_knowledge_search()
        words = [w for w in words if search.knows(w)]
    identifiers = [w for w in words if _IDENTIFIER.search(w)]
    others = [w for w in words if not _IDENTIFIER.search(w)]
    terms = list(dict.fromkeys([*quoted, *identifiers, *others]))
    return " ".join(terms[:MAX_CONDENSED_TERMS])


def _platform_terms(system_info: dict | None) -> list[str]:
    if not system_info:
        return []
    terms = []
    if version := system_info.get("dapr_version"):
        terms.append(f"dapr {version}")
    for key in ("platform", "cloud"):
        if value := system_info.get(key):
            terms.append(str(value))
    return terms


def _distinct(candidates: list[str]) -> list[str]:
    """Whitespace-normalised, non-empty candidates, each once (case-insensitive), in order."""
    queries: list[str] = []
    for candidate in (" ".join(c.split()) for c in candidates):
        if candidate and candidate.lower() not in {q.lower() for q in queries}:
            queries.append(candidate)
    return queries
