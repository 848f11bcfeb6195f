"""BM25 search over resolved cases (app/knowledge/case_store.py), for the expert step.

The index lives in memory per process and is kept in step with the store: when a shard of the
case list changed (one bulk read of 16 small keys tells), the cases not yet indexed are read and
added. A case found is read again before it is returned, so a retraction made by any replica is
honoured at once, and the retracted case leaves the index.

A case is returned only when it plausibly solves the same problem: it cites the article the
ticket's own retrieval ranks first, and it shares at least MIN_SHARED_TERMS distinct terms with
the query. A case is never chosen on its words alone: measured on the evaluation sets (cases
seeded from the dev set, `python -m app.eval`), a case citing only a lower-ranked article, or
only sharing the category, was about a different problem far more often than not.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    """BM25 (Lucene's variant, as bm25s scores it: k1 1.2, b 0.75) over the cases added to it;
    retracted ones are left out.

    Incremental: a case is analysed once, when it is added, and a search scores only the cases
    that cite the ticket's best article (the relevance rule admits no other), with the corpus
    statistics of every case. A service resolves cases all day; rebuilding a whole index (and
    reading every case again) whenever one was added cost each proposal time in proportion to
    all the cases ever resolved (1.6 s of analysis at 10,000)."""

    K1, B = 1.2, 0.75

    def __init__(self, cases: list[ResolvedCase] = ()):
        self._docs: dict[str, _IndexedCase] = {}
        self._df: Counter = Counter()
        self._total_length = 0
        self._by_article: dict[str, set[str]] = defaultdict(set)
        for case in cases:
            self.add(case)

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, ticket_id: str) -> bool:
        return ticket_id in self._docs

    def ids(self) -> set[str]:
        return set(self._docs)

    @property
    def cases(self) -> list[ResolvedCase]:
        return [self._docs[ticket_id].case for ticket_id in sorted(self._docs)]

    def add(self, case: ResolvedCase) -> None:
        """Adds the case, or replaces the one of the same ticket; a retracted case is removed."""
        self.remove(case.ticket_id)
        if case.retracted:
            return
        terms = analyze(_indexed_text(case))
        doc = _IndexedCase(case=case, tf=Counter(terms), length=len(terms))
        self._docs[case.ticket_id] = doc
        self._df.update(doc.tf.keys())
        self._total_length += doc.length
        for article in case.cited_articles:
            self._by_article[article].add(case.ticket_id)

    def remove(self, ticket_id: str) -> None:
        doc = self._docs.pop(ticket_id, None)
        if doc is None:
            return
        self._df.subtract(doc.tf.keys())
        self._total_length -= doc.length
        for article in doc.case.cited_articles:
            self._by_article[article].discard(ticket_id)

    def search(self, query: str, *, articles: list[str], k: int = MAX_CASES,
               exclude: set[str] = frozenset()) -> list[CaseHit]:
        """The k best cases for the query that pass the relevance rule (module docstring);
        `articles` is the ticket's own article ranking, best first."""
        terms = list(dict.fromkeys(analyze(query)))
        if not terms or not articles or not self._docs or k <= 0:
            return []
        n = len(self._docs)
        average_length = self._total_length / n
        idf = {t: math.log(1 + (n - self._df[t] + 0.5) / (self._df[t] + 0.5)) for t in terms if self._df[t] > 0}
        scored = []
        for ticket_id in self._by_article.get(articles[0], ()):
            if ticket_id in exclude:
                continue
            doc = self._docs[ticket_id]
            shared = [t for t in idf if t in doc.tf]
            if len(shared) < MIN_SHARED_TERMS:
                continue
            norm = self.K1 * (1 - self.B + self.B * doc.length / average_length)
            score = sum(idf[t] * doc.tf[t] / (doc.tf[t] + norm) for t in shared)
            if score > 0:
                scored.append((score, ticket_id, len(shared)))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [CaseHit(case=self._docs[ticket_id].case, score=score, shared_terms=shared)
                for score, ticket_id, shared in scored[:k]]


@dataclass(frozen=True)
class _IndexedCase:
    case: ResolvedCase
    tf: Counter
    length: int


class CaseLibrary:
    """The cases of one store, searched through an index kept in step with the case list: when
    a shard of the list changed, only the cases not yet indexed are read and added."""

    def __init__(self, store: CaseStore):
        self.store = store
        self._lock = threading.Lock()
        self._etags: tuple | None = None
        self._index = CaseIndex()

    def refresh(self) -> CaseIndex:
        ids, etags = self.store.shards()
        with self._lock:
            if etags != self._etags:
                for case in self.store.get_many([i for i in ids if i not in self._index]):
                    self._index.add(case)
                for ticket_id in self._index.ids() - set(ids):
                    self._index.remove(ticket_id)
                self._etags = etags
            return self._index

    def search(self, query: str, *, articles: list[str], k: int = MAX_CASES,
               exclude: set[str] = frozenset()) -> list[CaseHit]:
        index = self.refresh()
        with self._lock:
            hits = index.search(query, articles=articles, k=k + 2, exclude=exclude)
        current = []
        for hit in hits:
            case = self.store.get(hit.case.ticket_id)  # a retraction elsewhere wins over the index
            if case is None or case.retracted:
                with self._lock:
                    index.remove(hit.case.ticket_id)  # and leaves it for good
                continue
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
