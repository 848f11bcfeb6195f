"""BM25 retrieval over the knowledge-base articles.

Three BM25 indexes (via `bm25s`) score every article: one over the title and keywords, one over
the symptoms, one over the whole article. Their weighted sum ranks the articles, so a query that
names an error message or a flag listed in an article's header or symptoms outranks one that only
shares words with some resolution step. The KB is small (40 articles): scoring every document per
query takes well under a millisecond.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import bm25s
import numpy as np
import Stemmer
from pydantic import BaseModel

from app.knowledge.articles import Article, load_articles

# Weights of the per-field scores; the whole-article index always counts 1.
HEAD_WEIGHT = 1.0
SYMPTOMS_WEIGHT = 0.5
SNIPPET_CHARS = 240

_WORD = re.compile(r"[A-Za-z0-9]+(?:[._/\-:][A-Za-z0-9]+)*")
_SEPARATORS = re.compile(r"[._/\-:]")
_CAMEL_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# Common words that carry no topic; everything else longer than one character is kept, including
# numbers such as ports and status codes, and repetition words (same, again, once) that mark
# duplicate-delivery problems.
STOPWORDS = frozenset("""
a about after all also am an and any are as at be because been before being both but by
can could did do does doing down during each few for from further had has have having he her
here hers him his how i if in into is it its itself just me more most my no nor not now of off
on only or other our ours out over own she should so some such than that the their
theirs them then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yet us get got
""".split())

# Abbreviations customers use for words the articles spell out (applied to queries and articles).
_ABBREVIATIONS = {
    "k8s": "kubernetes", "prod": "production", "cert": "certificate", "certs": "certificates",
    "creds": "credentials", "config": "configuration", "env": "environment", "db": "database",
    "msg": "message", "msgs": "messages", "wf": "workflow", "perms": "permissions",
}

# Customers' names for Dapr concepts, mapped onto the name the articles use (applied to queries
# and articles, like the abbreviations), so that retrieval and scope coverage understand them.
# Only synonyms Dapr's own docs give: the workflow protocol reference calls the workflow an
# orchestration, run by an orchestrator (docs.dapr.io/contributing/protocol-reference); "Pub/sub
# brokers" says Dapr "integrates with pub/sub message buses" (docs.dapr.io/operations/components/
# setup-pubsub). The docs' producer/consumer for publisher/subscriber are left out: outside Dapr
# they name Kafka's own clients, and mapping them lifted a Kafka-broker ticket into scope.
_DOMAIN_SYNONYMS = {
    "orchestration": "workflow", "orchestrations": "workflows",
    "orchestrator": "workflow", "orchestrators": "workflows",
    "bus": "pubsub", "buses": "pubsub",
}
_NORMALISED = {**_ABBREVIATIONS, **_DOMAIN_SYNONYMS}

_stemmer = Stemmer.Stemmer("english")

# bm25s logs every index build at DEBUG; under a host that logs DEBUG (FastMCP) that is noise.
logging.getLogger("bm25s").setLevel(logging.WARNING)


class SearchHit(BaseModel):
    slug: str
    title: str
    category: str
    score: float
    snippet: str = ""  # the workflow's copies of a hit leave it out (SearchHitOut)

    @classmethod
    def of(cls, article, score: float, snippet: str = "") -> "SearchHit":
        """A hit on `article` (an Article) with its title and category."""
        return cls(slug=article.slug, title=article.title, category=article.category, score=score, snippet=snippet)


def analyze(text: str) -> list[str]:
    """Text -> stemmed terms. Identifiers are split into their parts (`actorStateStore`,
    `app-port`, `ERR_DIRECT_INVOKE`) and also kept joined (`actorstatestore`, `appport`), so both
    'actor state store' and 'actorStateStore' match."""
    terms: list[str] = []
    for word in _WORD.findall(text):
        word = _NORMALISED.get(word.lower(), word)
        parts = [p.lower() for chunk in _SEPARATORS.split(word) for p in _CAMEL_PARTS.findall(chunk)]
        parts = [_NORMALISED.get(p, p) for p in parts]
        if len(parts) > 1:
            parts.append("".join(parts))
        terms.extend(p for p in parts if len(p) > 1 and p not in STOPWORDS)
    return _stemmer.stemWords(terms)


class KnowledgeSearch:
    def __init__(self, articles: dict[str, Article]):
        self._articles = [articles[slug] for slug in sorted(articles)]
        self._fields = [
            (1.0, _build_index(f"{a.title}\n{a.body}" for a in self._articles)),
            (HEAD_WEIGHT, _build_index(f"{a.title}\n{', '.join(a.keywords)}" for a in self._articles)),
            (SYMPTOMS_WEIGHT, _build_index("\n".join(a.symptoms) for a in self._articles)),
        ]
        # Snippet candidates with their terms, analysed once here rather than per query.
        self._sentences = [_snippet_sentences(a) for a in self._articles]
        # Every term some article holds: a query term outside it cannot match anything.
        self.vocabulary = frozenset(term for a in self._articles for term in analyze(
            f"{a.title}\n{a.body}\n{' '.join(a.keywords)}\n{' '.join(a.symptoms)}"))

    def knows(self, word: str) -> bool:
        """Whether a term of the word occurs in some article."""
        return any(term in self.vocabulary for term in analyze(word))

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        """The k best articles for the query, best first; articles sharing no term are left out."""
        terms = list(dict.fromkeys(analyze(query)))
        if not terms or k <= 0:
            return []
        scores = sum(weight * index.get_scores(terms) for weight, index in self._fields)
        # Stable sort on -score keeps slug order (the articles are sorted) for equal scores.
        order = np.argsort(-scores, kind="stable")[:k]
        return [self._hit(i, float(scores[i]), set(terms)) for i in order if scores[i] > 0]

    def _hit(self, i: int, score: float, terms: set[str]) -> SearchHit:
        article = self._articles[i]
        # The symptom or cause sentence sharing most terms with the query (first one on ties).
        snippet = max(self._sentences[i], key=lambda sentence: len(terms & sentence[1]))[0]
        return SearchHit(slug=article.slug, title=article.title, category=article.category,
                         score=round(score, 4), snippet=snippet)


@lru_cache
def get_knowledge_search() -> KnowledgeSearch:
    """The search over the packaged articles, built once per process."""
    return KnowledgeSearch(load_articles())


def _build_index(texts) -> bm25s.BM25:
    index = bm25s.BM25(k1=1.2, b=0.75)
    index.index([analyze(text) for text in texts], show_progress=False)
    return index


def _snippet_sentences(article: Article) -> list[tuple[str, frozenset[str]]]:
    sentences = [s for item in article.symptoms + article.causes
                 for s in _SENTENCE_END.split(" ".join(item.split()))]
    return [(_shorten(s), frozenset(analyze(s))) for s in sentences]


def _shorten(sentence: str) -> str:
    if len(sentence) <= SNIPPET_CHARS:
        return sentence
    return sentence[: SNIPPET_CHARS - 1].rstrip() + "…"
