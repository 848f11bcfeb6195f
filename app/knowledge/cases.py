"""BM25 search over resolved cases (app/knowledge/case_store.py), for the expert step.

The index lives in memory per process and is rebuilt from the store when a shard of the case
list changed (one bulk read of 16 small keys tells). A case found is read again before it is
returned, so a retraction made by any replica is honoured at once, even by an index that has
not been rebuilt yet.

A case is returned only when it plausibly solves the same problem: it cites the article the
ticket's own retrieval ranks first, and it shares at least MIN_SHARED_TERMS distinct terms with
the query. A case is never chosen on its words alone: measured on the evaluation sets (cases
seeded from the dev set, `python -m app.eval`), a case citing only a lower-ranked article, or
only sharing the category, was about a different problem far more often than not.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import bm25s
import numpy as np

from app.knowledge.case_store import CaseStore, ResolvedCase
from app.knowledge.search import analyze

if TYPE_CHECKING:  # the evaluation command imports this module without the Dapr client
    from app.store import StateStore

MAX_CASES = 2
MIN_SHARED_TERMS = 3
EXCERPT_CHARS = 400


@dataclass(frozen=True)
class CaseHit:
    case: ResolvedCase
    score: float
    shared_terms: int

    def citation(self) -> dict:
        """The past resolution as a proposal cites it (contracts.PastCase)."""
        text = " ".join(self.case.text.split())
        excerpt = text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"
        return {"ticket_id": self.case.ticket_id, "approver": self.case.approver,
                "resolved_at": self.case.resolved_at, "category": self.case.category,
                "cited_articles": list(self.case.cited_articles), "excerpt": excerpt,
                "score": round(self.score, 4), "kind": "past_resolution"}


class CaseIndex:
    """BM25 over a fixed set of cases; retracted ones are left out."""

    def __init__(self, cases: list[ResolvedCase]):
        self.cases = [c for c in sorted(cases, key=lambda c: c.ticket_id) if not c.retracted]
        self._terms = [set(analyze(_indexed_text(c))) for c in self.cases]
        self._index = None
        if self.cases:
            self._index = bm25s.BM25(k1=1.2, b=0.75)
            self._index.index([analyze(_indexed_text(c)) for c in self.cases], show_progress=False)

    def __len__(self) -> int:
        return len(self.cases)

    def search(self, query: str, *, articles: list[str], k: int = MAX_CASES,
               exclude: set[str] = frozenset()) -> list[CaseHit]:
        """The k best cases for the query that pass the relevance rule (module docstring);
        `articles` is the ticket's own article ranking, best first."""
        terms = list(dict.fromkeys(analyze(query)))
        if not terms or not articles or self._index is None or k <= 0:
            return []
        scores = self._index.get_scores(terms)
        found = []
        best = articles[0]
        for i in np.argsort(-scores, kind="stable"):
            case = self.cases[i]
            if scores[i] <= 0 or case.ticket_id in exclude:
                continue
            shared = len(self._terms[i] & set(terms))
            if shared >= MIN_SHARED_TERMS and best in case.cited_articles:
                found.append(CaseHit(case=case, score=float(scores[i]), shared_terms=shared))
            if len(found) == k:
                break
        return found


class CaseLibrary:
    """The cases of one store, searched through an index refreshed when the case list changes."""

    def __init__(self, store: CaseStore):
        self.store = store
        self._lock = threading.Lock()
        self._etags: tuple | None = None
        self._index = CaseIndex([])

    def refresh(self) -> CaseIndex:
        ids, etags = self.store.shards()
        with self._lock:
            if etags != self._etags:
                self._index = CaseIndex(self.store.get_many(ids))
                self._etags = etags
            return self._index

    def search(self, query: str, *, articles: list[str], k: int = MAX_CASES,
               exclude: set[str] = frozenset()) -> list[CaseHit]:
        hits = self.refresh().search(query, articles=articles, k=k + 2, exclude=exclude)
        current = []
        for hit in hits:
            case = self.store.get(hit.case.ticket_id)  # a retraction elsewhere wins over the index
            if case is not None and not case.retracted:
                current.append(CaseHit(case=case, score=hit.score, shared_terms=hit.shared_terms))
            if len(current) == k:
                break
        return current


_libraries: dict[str, CaseLibrary] = {}
_libraries_lock = threading.Lock()


def case_library(store: "StateStore") -> CaseLibrary:
    """One library per state store per process."""
    with _libraries_lock:
        library = _libraries.setdefault(store.name, CaseLibrary(CaseStore(store)))
        library.store = CaseStore(store)  # the caller's client: the index is what is kept
        return library


def _indexed_text(case: ResolvedCase) -> str:
    return f"{case.text}\n{case.category}\n{' '.join(case.cited_articles)}"
