"""Whether a ticket is about running Dapr applications and something the knowledge base answers.

Decided from measurements, not from a list of out-of-scope phrases. Five pieces of evidence,
each mapped onto 0..1 and averaged into the scope score:

- retrieval: how strongly the best article matches the ticket (its BM25 score);
- coverage: how much of the ticket's wording the two best articles contain (two, so that a
  ticket with two problems is covered by both answers). Words weigh by how rare they are in
  English: "Terraform", "invoice" or "Jenkins" left unexplained say more than "month" or "fix".
  A customer's name for a Dapr concept that Dapr's docs give (orchestration for workflow, message
  bus for pub/sub) is read as the articles' word (`app.knowledge.search.analyze`);
- Dapr language: how much likelier the ticket's words are in the knowledge base than in general
  English (word frequencies from `wordfreq`), averaged over the words: "sidecar" and
  "subscriber" count for, words the articles never use count against;
- runtime vocabulary: the strongest such word among those the articles use across many topics
  (the runtime's own: sidecar, component, app id, namespace), as opposed to a tool one topic
  mentions (Docker for `dapr init`): a ticket about a Jenkins pipeline pulling Docker images
  shares words with that topic but says nothing about the runtime. Product names (those the
  articles write capitalised: Dapr, Redis, Kafka) are not runtime vocabulary: "Dapr" in a roadmap
  question or "Redis" in a ticket about a Redis cache says which product, not which mechanism;
- subject: 0 when the opening phrase of the first sentence (its words up to the first function
  word or comma) names another product the explaining articles do not mention ("Our Istio ingress
  gateway returns 503", "Our GitHub Actions workflow cannot push"), else 1. A name qualifying
  the customer's app or service ("our Flask app") only says what the app is written in. A first
  sentence that ends in a colon and names nothing ("Production is down:") announces the next.

Two kinds of words are left out of coverage and language because they say nothing about the
topic: where the problem happens (the triage environment cues: production, staging, a laptop),
and the customer's own identifiers: tokens English has never seen, that the articles do not use
either, written like an identifier ("uuid4", "OrderCreated", "order_id"), as are plain numbers.
So are, when the articles never use them, the values the customer writes as values whatever
English makes of the words: a single quoted token ('user-signup'), the parts of a path
(/signup/v2), a quantity with its unit (1am, 90s), and the name of the customer's own app or
service ("the warehouse service"): they name things in the customer's system, not the topic.
A plain word English has never seen ("Istio") is a name and counts, unexplained.

The category model (`app.triage.ticket_model`, learned from the labelled tickets) overrules the
score when it is sure: a ticket it finds `other` with probability OTHER_PROBABILITY or more goes
to a person though the score keeps it (a Dapr feature no article covers, a request that reads like
a Dapr one), and one it finds `other` below SURELY_DAPR_BELOW stays though the score would send it
away (a Dapr problem told in a business's words). Three triage signals decide on their own: a
category `other` already chosen (by an LLM triage), a Dapr API that no article covers named by the
ticket (`app.triage.dapr_apis`: the distributed lock, cryptography; coverage computed from the
articles), and the customer saying Dapr is not involved
when that governs the ticket ("no Dapr here", "Dapr
isn't installed", "we removed Dapr from them", "no sidecar anywhere in that path"). A negation confined
to one part ("a Go producer writing straight to RabbitMQ (no Dapr on that side)") does not decide
when the rest of the ticket, without the parentheticals and clauses that carry it, still names
Dapr (or one of its error codes) and scores in scope on its own: the ticket's score decides then.
A qualifier ("in this path", "in that app") does not tell the two apart: customers qualify the
negation as often when Dapr is nowhere in the ticket.
`SCOPE_THRESHOLD` was chosen by `python -m app.eval --calibrate-scope` over the development sets
(see its output for the sweep).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel
from wordfreq import word_frequency, zipf_frequency

from app.knowledge.articles import load_articles
from app.knowledge.search import STOPWORDS, analyze, get_knowledge_search
from app.triage.classify import without_environment
from app.triage.dapr_apis import named_uncovered_api

# A BM25 score of this much or more counts as a full retrieval match (dev in-scope median ~25).
FULL_RETRIEVAL_SCORE = 30.0
# Articles whose vocabulary may explain the ticket: one per problem, tickets have up to two.
EXPLAINING_ARTICLES = 2
# Mean log10 likelihood ratio (knowledge base over English) per word that counts as fully Dapr
# language: most in-scope development tickets have 1 to 2.5, billing or account tickets about 0.
FULL_DAPR_LANGUAGE = 2.0
# A word used by at least this share of the articles is runtime vocabulary (8 of 40; any share
# from 1/8 to 1/4 routed the development sets alike), and one 1000 times likelier in the articles
# than in English (log10 ratio RUNTIME_FULL_RATIO) is fully so.
RUNTIME_ARTICLE_SHARE = 0.2
RUNTIME_FULL_RATIO = 3.0
# Share of the knowledge-base frequency in the mix with the English one (Jelinek-Mercer
# smoothing): a word the articles never use scores log10(1 - KB_MIX) = -1, not minus infinity.
KB_MIX = 0.9
# A word's weight is its rarity: ZIPF_CEILING minus its Zipf frequency in English (7 for a word
# English never uses, 1 for "the"), at least MIN_WEIGHT.
ZIPF_CEILING = 7.0
MIN_WEIGHT = 0.5
# Below this Zipf frequency (once in 10^8 words) English does not know the token.
UNKNOWN_ZIPF = 1.0
# A capitalised word English uses more often than this (Zipf 4.5, 30 per million words: Friday,
# Spring, Actions) is a calendar or common word written with a capital, not a product's name.
NAME_MAX_ZIPF = 4.5
# A name followed by one of these says what the customer's own app is written in.
_OWN_APP = frozenset({"app", "apps", "application", "applications", "service", "services",
                      "microservice", "microservices",
                      # the role the customer's app plays: "our Spring Boot consumer"
                      "consumer", "consumers", "producer", "producers", "publisher", "publishers",
                      "subscriber", "subscribers", "worker", "workers", "backend", "frontend"})
_COUNTS = frozenset({"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "several", "multiple"})
# Words that open a noun phrase without being its content.
_DETERMINERS = frozenset({"a", "an", "the", "our", "my", "your", "their", "this", "these",
                          "those", "its"})
# Measured with `python -m app.eval --calibrate-scope` over the development sets (shared/eval
# dev and dev-scope, tests/data/scope-calibration) and the earlier holdout set, 130 tickets: the
# midpoint of the gap between the highest out-of-scope score below every in-scope one (0.701)
# and the lowest in-scope score (0.713); 30 of the 32 out-of-scope tickets fall below it (a
# website's TLS certificate, 0.767, and a Redis cache used without Dapr, 0.737, do not). The gap
# is narrow: an unseen in-scope ticket can land below it.
SCOPE_THRESHOLD = 0.707
# The category model's probability of `other` that overrules the score (docs/benchmarks.md,
# "Session 15", each chosen with the sets held out of the model's training): from this up, a
# ticket the score keeps goes to a person (older sets: out of scope routed 0.885 -> 0.921, none
# more routed away); below SURELY_DAPR_BELOW, a ticket the score would send away stays (in scope
# routed away 0.027 -> 0.006; on nine sets written blind since, 0.051 -> 0.030 and 0.113 -> 0.042).
OTHER_PROBABILITY = 0.5
SURELY_DAPR_BELOW = 0.2

_WORDS = re.compile(r"[A-Za-z0-9][\w'-]*[A-Za-z0-9]|[A-Za-z]")
_NUMBER = re.compile(r"[\d.,:-]+")
# Identifier-shaped: a digit, an underscore, an inner capital, or parts joined by - or .
_IDENTIFIER = re.compile(r".*([0-9_]|[a-z][A-Z]|[A-Za-z][-.][A-Za-z]).*")
# Values written as values (module docstring): a quoted single token, a path, a quantity with
# its unit, and the words naming the customer's own app or service.
_QUOTED_TOKEN = re.compile(r"(?<!\w)['\"`]([^\s'\"`]+)['\"`](?!\w)")
_PATH = re.compile(r"(?<![\w/])/[\w.-]+(?:/[\w.{}-]+)*")
_QUANTITY = re.compile(r"\b\d+[a-z]{1,3}\b")
_OWN_APP_NAME = re.compile(
    r"\b(?i:our|the|my|their|its|this|that|a|an)\s+((?:[a-z][\w-]*\s+){1,2}?)"
    r"(?:app|apps|application|applications|service|services|microservice|microservices)\b")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")
_LABELLED = re.compile(r"\([^()]*\)|\"[^\"]*\"|\u201c[^\u201d]*\u201d")
# The customer states that Dapr is not part of the problem: a negation governing the product
# name ("no Dapr in this path", "we don't use Dapr there", "without Dapr").
_DAPR_NOT_INVOLVED = re.compile(
    r"\b(no|not|without|never|isn't|aren't|don't|doesn't|nothing to do with)\b(\s+\w+){0,2}?\s+dapr\b"
    # Dapr as the whole product, not a part of it: "without a Dapr sidecar" is a Dapr problem.
    r"(?=\s*([.,;:!?)]|$|(in|on|for|at|here|there|involved|yet|anymore|anywhere|with|between|to)\b))"
    # Dapr first: "Dapr isn't installed on this cluster", "Dapr is not used here".
    r"|\bdapr\s+(is|was|are|were)(\s+not|n't)\s+(installed|used|involved|running|deployed|part)\b"
    # Dapr taken out: "we removed Dapr from them last quarter", "we moved off Dapr".
    r"|\b(removed|uninstalled|ripped out|took out|moved off|migrated (away )?(from|off)|stopped using"
    r"|no longer (use|uses|run|runs|using|running))\s+dapr\b(?!\s*(sidecars?|components?|apis?)\b)"
    # No sidecar where the problem is: "no sidecar in the path", "no sidecar anywhere in that path".
    r"|\bno (dapr |daprd )?sidecars? (anywhere|(\w+ )?(in|on) (the|that|this) (path|flow|call path|data path|chain))\b"
    # Traffic that never gets to Dapr: "requests never even reach our Dapr-enabled pods".
    r"|\b(never|don't|doesn't|do not|does not) (even )?(reach|get to|hit|touch) (our |the |any )?dapr"
    # Dapr said to be well: "the Dapr apps behind it look healthy".
    r"|\bdapr\b(\s+[\w-]+){0,3}?\s+(look|looks|is|are|seem|seems)\s+(healthy|fine|ok|okay|unaffected|normal)\b"
    # Dapr kept to something else: "we only use Dapr for the notifications service".
    r"|\b(only|just) (use|uses|run|runs|using|running) dapr (for|in|on|with)\b"
    r"|\b(use|uses|run|runs) dapr only (for|in|on|with)\b",
    re.IGNORECASE)
# Dapr named as part of the ticket ("our Dapr subscriber", "the daprd sidecar", an
# ERR_PUBSUB_NOT_FOUND): a negation is confined to its own part only when the rest of the ticket
# still names Dapr; where the customer names Dapr only to say it is not involved, the rest is
# about another system however much its wording resembles the articles' (an Istio sidecar, a
# Temporal workflow).
_DAPR_NAMED = re.compile(r"\b(?i:dapr\w*)|\bERR_[A-Z_]+\b")  # or one of its error codes
# The smallest units a negation can be confined to: a parenthetical, else a clause (a sentence,
# or one of coordinated clauses joined by ", and" / ", but" or cut by ";").
_PARENTHETICAL = re.compile(r"\([^()]*\)")
_CLAUSE = re.compile(r"(?<=[.!?;:])\s+|,\s+(?:and|but)\s+", re.IGNORECASE)
UNEXPLAINED_SHOWN = 4  # unexplained words named in the coverage signal


class ScopeAssessment(BaseModel):
    in_scope: bool
    score: float  # 0..1; below SCOPE_THRESHOLD the ticket goes to a person
    reason: str
    signals: list[str]


@dataclass(frozen=True)
class ScopeEvidence:
    """The five measurements behind the scope score, each on 0..1 (module docstring)."""
    retrieval: float
    coverage: float
    dapr_language: float
    runtime: float
    top_score: float
    unexplained: list[str]  # the weightiest words no explaining article contains
    most_dapr: list[str]  # the words most specific to the knowledge base
    runtime_word: str | None  # the strongest runtime-vocabulary word
    other_product: str | None = None  # another product named as the subject

    @property
    def subject(self) -> float:
        return 0.0 if self.other_product else 1.0

    @property
    def score(self) -> float:
        parts = (self.retrieval, self.coverage, self.dapr_language, self.runtime, self.subject)
        return round(sum(parts) / len(parts), 3)

    def signals(self) -> list[str]:
        return [
            f"retrieval: best article score {self.top_score:.1f} ({self.retrieval:.2f})",
            f"coverage: the best articles contain {self.coverage:.0%} of the wording"
            + (f"; not: {', '.join(self.unexplained)}" if self.unexplained else ""),
            f"Dapr language: {', '.join(self.most_dapr) or 'none'} ({self.dapr_language:.2f})",
            f"runtime vocabulary: {self.runtime_word or 'none'} ({self.runtime:.2f})",
            f"subject: {f'{self.other_product}, another product' if self.other_product else 'no other product'}"
            f" ({self.subject:.2f})",
        ]


def assess_scope(description: str, classification=None) -> ScopeAssessment:
    """Scope of a ticket. `classification` (a triage Classification, or anything with
    `top_score`, `matched_slugs` and `category`) saves one search; a category `other` already
    decided (by an LLM triage) puts the ticket out of scope."""
    slugs = getattr(classification, "matched_slugs", None)
    top_score = getattr(classification, "top_score", None)
    if slugs is None or top_score is None:
        hits = get_knowledge_search().search(description, k=EXPLAINING_ARTICLES)
        slugs, top_score = [hit.slug for hit in hits], hits[0].score if hits else 0.0
    evidence = measure_scope(description, top_score, slugs[:EXPLAINING_ARTICLES])
    score, signals = evidence.score, evidence.signals()

    if getattr(classification, "category", None) == "other":
        return ScopeAssessment(in_scope=False, score=score, signals=signals,
                               reason="triage chose category other")
    if (api := named_uncovered_api(description)):
        return ScopeAssessment(in_scope=False, score=score,
                               signals=[*signals, f"Dapr API no article covers: {api}"],
                               reason=f"the ticket is about the {api} API, which no knowledge-base article covers")
    if (negation := _DAPR_NOT_INVOLVED.search(" ".join(description.split()))):
        rest = without_negating_clauses(description)
        rest_score = score_alone(rest) if rest and _DAPR_NAMED.search(rest) else 0.0
        if rest_score < SCOPE_THRESHOLD:
            return ScopeAssessment(in_scope=False, score=score,
                                   signals=[*signals, f"Dapr not involved: {negation.group(0)!r}"],
                                   reason=f"the customer says Dapr is not involved ({negation.group(0)!r})")
        # The negation speaks for its own clause only: the rest reports a Dapr problem.
        signals = [*signals, f"Dapr not involved in one part only: {negation.group(0)!r}; the rest "
                             f"of the ticket scores {rest_score:.2f} on its own"]
    other = _category_model_other(description)
    if score < SCOPE_THRESHOLD and other >= SURELY_DAPR_BELOW:
        return ScopeAssessment(in_scope=False, score=score, signals=[*signals, _other_signal(other)],
                               reason=f"scope score {score:.2f} below {SCOPE_THRESHOLD}: no article "
                                      f"addresses the ticket or it is not about Dapr")
    if score < SCOPE_THRESHOLD:
        return ScopeAssessment(in_scope=True, score=score, signals=[*signals, _other_signal(other)],
                               reason=f"scope score {score:.2f} below {SCOPE_THRESHOLD}, but the category model "
                                      f"reads it as a Dapr problem (other {other:.0%})")
    if other >= OTHER_PROBABILITY:
        return ScopeAssessment(in_scope=False, score=score, signals=[*signals, _other_signal(other)],
                               reason=f"scope score {score:.2f}, but the category model reads it as other ({other:.0%})")
    return ScopeAssessment(in_scope=True, score=score, signals=[*signals, _other_signal(other)],
                           reason=f"scope score {score:.2f} at or above {SCOPE_THRESHOLD}")


def _category_model_other(description: str) -> float:
    """How likely the category model (learned from the labelled tickets) finds the ticket `other`:
    those tickets include Dapr features no article covers and requests that read like Dapr ones,
    which the five measurements score in scope, and Dapr problems told in a business's words,
    which they score out."""
    from app.triage.classify import category_cues, kb_category
    from app.triage.ticket_model import load_model

    return load_model("category").probabilities(description, category_cues(kb_category(description)))["other"]


def _other_signal(other: float) -> str:
    return f"category model: other {other:.0%}"


def without_negating_clauses(description: str) -> str:
    """The ticket without the parentheticals and clauses in which the customer says Dapr is not
    involved ("a Go producer writes to RabbitMQ (no Dapr on that side)" keeps all but the
    parenthetical)."""
    text = _PARENTHETICAL.sub(
        lambda m: " " if _DAPR_NOT_INVOLVED.search(m.group(0)) else m.group(0),
        " ".join(description.split()))
    clauses = [c for c in _CLAUSE.split(text) if c.strip()]
    return " ".join(" ".join(c for c in clauses if not _DAPR_NOT_INVOLVED.search(c)).split())


def score_alone(text: str) -> float:
    """The scope score of a text with its own search, as if it were a ticket of its own."""
    hits = get_knowledge_search().search(text, k=EXPLAINING_ARTICLES)
    top_score = hits[0].score if hits else 0.0
    return measure_scope(text, top_score, [hit.slug for hit in hits]).score


def measure_scope(description: str, top_score: float, slugs: list[str]) -> ScopeEvidence:
    """Retrieval, coverage by the articles `slugs`, Dapr language and runtime vocabulary of a
    ticket (module docstring)."""
    known = _article_frequencies()
    explaining = set().union(*(_article_terms()[slug] for slug in slugs))
    total = covered = ratio_sum = 0.0
    unexplained: dict[str, float] = {}
    ratios: dict[str, float] = {}
    runtime: dict[str, float] = {}
    written = {w.lower(): w for w in _WORDS.findall(description)}
    values = customer_values(description)
    for word in topic_words(description):
        stems = analyze(word)
        zipf = zipf_frequency(word, "en")
        if not _contains(known, stems) and (word in values or (
                zipf < UNKNOWN_ZIPF and _IDENTIFIER.fullmatch(written.get(word, word)))):
            continue  # the customer's own identifier or value: says neither Dapr nor anything else
        weight = max(MIN_WEIGHT, ZIPF_CEILING - zipf)
        total += weight
        if _contains(explaining, stems):
            covered += weight
        else:
            unexplained[word] = weight
        ratios[word] = kb_likelihood_ratio(word, stems)
        ratio_sum += ratios[word]
        if _article_share(stems) >= RUNTIME_ARTICLE_SHARE and _bare(word) not in _kb_names():
            runtime[word] = ratios[word]
    language = ratio_sum / len(ratios) if ratios else 0.0
    runtime_word = max(runtime, key=lambda w: (runtime[w], w), default=None)
    return ScopeEvidence(
        retrieval=min(1.0, math.log1p(top_score) / math.log1p(FULL_RETRIEVAL_SCORE)),
        coverage=covered / total if total else 0.0,
        dapr_language=max(0.0, min(1.0, language / FULL_DAPR_LANGUAGE)),
        runtime=max(0.0, min(1.0, runtime[runtime_word] / RUNTIME_FULL_RATIO)) if runtime_word else 0.0,
        runtime_word=runtime_word,
        top_score=top_score,
        unexplained=sorted(unexplained, key=lambda w: (-unexplained[w], w))[:UNEXPLAINED_SHOWN],
        most_dapr=[w for w in sorted(ratios, key=lambda w: (-ratios[w], w))[:3] if ratios[w] > 0],
        other_product=subject_product(description, explaining))


def customer_values(description: str) -> set[str]:
    """The lower-cased words the customer writes as values (module docstring): quoted single
    tokens, path parts, quantities and the names of the customer's own apps and services."""
    spans = [m.group(1) for m in _QUOTED_TOKEN.finditer(description)]
    spans += [m.group(0) for m in _PATH.finditer(description)]
    spans += [m.group(0) for m in _QUANTITY.finditer(description)]
    spans += [m.group(1) for m in _OWN_APP_NAME.finditer(" ".join(description.split()))]
    return {w.lower() for span in spans for w in [span.strip(), *_WORDS.findall(span)]}


def subject_product(description: str, explaining) -> str | None:
    """Another product named in the opening phrase of the first sentence (module docstring),
    that the `explaining` article terms do not contain. A first sentence that ends in a colon and
    names nothing ("Production is down:") announces the next one: that one opens the ticket."""
    # A line of its own ends a sentence here: a subject line ("Subject: Large uploads rejected")
    # opens the ticket without a full stop.
    lines = (" ".join(line.split()) for line in without_environment(description).splitlines())
    sentences = [s for line in lines for s in _SENTENCE.split(line) if s][:2] or [""]
    product = _opening_product(sentences[0], explaining)
    if product is None and sentences[0].rstrip().endswith(":") and len(sentences) > 1:
        product = _opening_product(sentences[1], explaining)
    return product


def _opening_product(sentence: str, explaining) -> str | None:
    # A comma closes the opening phrase: what follows is a list of the setup ("Self-hosted, two
    # Ubuntu VMs") or another clause, not the subject.
    # A name in quotes or parentheses is the customer's own label ('our assistant ("Ask Nora")').
    words = _WORDS.findall(_LABELLED.sub(" ", sentence.split(",", 1)[0]))
    start = 0
    while start < len(words) and words[start].lower() in _DETERMINERS:
        start += 1
    if start < len(words) and words[start].lower() in STOPWORDS:
        return None  # a question or a clause ("Is there", "After we"): no subject up front
    if start < len(words) and (words[start].isdigit() or words[start].lower() in _COUNTS):
        return None  # a count of machines or services ("three Ubuntu VMs ..."): the setup, no subject
    # The first word is capitalised anyway: a capital says nothing there.
    for i in range(max(start, 1), len(words)):
        word = words[i]
        if word.lower() in STOPWORDS:
            break
        following = words[i + 1].lower() if i + 1 < len(words) else ""
        if (word[0].isupper() and not word.isupper() and not word.lower().startswith("dapr")
                and following not in _OWN_APP and _is_name(word)
                and not _contains(explaining, analyze(word))):
            return word
    return None


def _is_name(word: str) -> bool:
    """A capitalised word is a name unless English uses it commonly (Friday, Actions) or it is the
    customer's own identifier (unknown to English and shaped like one)."""
    zipf = zipf_frequency(_bare(word), "en")  # "Friday's" is as common as "Friday"
    return bool(analyze(word)) and zipf < NAME_MAX_ZIPF and not (
        zipf < UNKNOWN_ZIPF and _IDENTIFIER.fullmatch(word))


def _bare(word: str) -> str:
    return word[:-2] if word.endswith("'s") else word


def topic_words(description: str) -> list[str]:
    """The ticket's distinct words that can tell its topic: lower-cased, without stopwords,
    plain numbers or the environment cues."""
    words = (w.lower() for w in _WORDS.findall(without_environment(description)))
    return [w for w in dict.fromkeys(words)
            if w not in STOPWORDS and not _NUMBER.fullmatch(w) and analyze(w)]


def kb_likelihood_ratio(word: str, stems: list[str] | None = None) -> float:
    """log10 of how much likelier the word is in the knowledge base (smoothed with English)
    than in English: about 4.6 for "sidecar", 0 for a word as common in both, -1 for a word the
    articles never use."""
    counts, total = _kb_term_counts()
    stems = stems if stems is not None else analyze(word)
    kb = sum(counts[stem] for stem in stems) / total / len(stems) if stems else 0.0
    english = max(word_frequency(word, "en"), 1e-8)
    return math.log10(KB_MIX * kb / english + 1 - KB_MIX)


def _contains(terms, stems: list[str]) -> bool:
    """The vocabulary has the word: all its stems. An identifier (`actorStateStore`) is analysed
    into its parts and, last, the parts joined: either is enough."""
    return bool(stems) and (all(stem in terms for stem in stems[:-1] or stems) or stems[-1] in terms)


def _article_share(stems: list[str]) -> float:
    """Share of the articles that use the word (all its parts)."""
    frequencies = _article_frequencies()
    return min(frequencies[stem] for stem in stems[:-1] or stems) / len(_article_terms())


def _article_text(article) -> str:
    return f"{article.title} {' '.join(article.keywords)} {article.body}"


@lru_cache
def _article_terms() -> dict[str, frozenset[str]]:
    return {slug: frozenset(analyze(_article_text(a))) for slug, a in load_articles().items()}


@lru_cache
def _kb_names() -> frozenset[str]:
    """Words the articles write as names: capitalised inside a sentence (outside code) at least
    twice and at least three times as often as in lower case (Dapr, Redis, Kafka, Kubernetes)."""
    capitalised, lower = Counter(), Counter()
    for article in load_articles().values():
        prose = re.sub(r"`[^`]*`", " ", article.body)
        for sentence in re.split(r"(?<=[.!?:])\s+|\n+", prose):
            for i, word in enumerate(_WORDS.findall(sentence.lstrip("-0123456789. "))):
                if i and word[0].isupper() and not word.isupper():
                    capitalised[word.lower()] += 1
                elif word[0].islower():
                    lower[word.lower()] += 1
    return frozenset(w for w, n in capitalised.items() if n >= 2 and n >= 3 * lower[w])


@lru_cache
def _article_frequencies() -> Counter:
    """In how many articles each term occurs."""
    return Counter(term for terms in _article_terms().values() for term in terms)


@lru_cache
def _kb_term_counts() -> tuple[Counter, int]:
    """How often each term occurs in all the articles, and the number of terms."""
    counts = Counter(term for a in load_articles().values() for term in analyze(_article_text(a)))
    return counts, sum(counts.values())
