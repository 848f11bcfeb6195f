"""Makes an approved solution customer-independent before it is indexed as a resolved case.

An engineer's edited solution may name the customer ("Acme Corporation"), its id, its systems
(applications, platform, Dapr version) or quote the ticket. Each of those is replaced by a
neutral placeholder; generic personal data (email addresses, IPv4 addresses) too. Matching is
whole-word and case-insensitive, and errs on the side of removing: a case that reads
"restart [application]" is still useful, one that names another customer is a leak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words of a company name that identify no one.
_NAME_SUFFIXES = frozenset("""
inc inc. incorporated corp corp. corporation co co. company llc l.l.c. ltd ltd. limited gmbh ag sa
s.a. plc bv b.v. group holdings the and of
""".split())
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_WORDS = re.compile(r"\w+(?:[.\-']\w+)*")
# A run of this many consecutive words of the ticket's description is a quotation.
QUOTE_WORDS = 6
QUOTE_MARK = "[quoted from the ticket]"
# System values shorter than this (e.g. "ha") would remove ordinary words.
MIN_VALUE_CHARS = 3


@dataclass(frozen=True)
class Scrubbed:
    text: str
    redactions: int


def scrub_solution(text: str, *, customer_id: str, customer_name: str | None,
                   system_info: dict | None, description: str) -> Scrubbed:
    """The solution with the customer's data replaced; `redactions` counts the replacements."""
    count = 0

    def replace(pattern: re.Pattern, placeholder: str, current: str) -> str:
        nonlocal count
        current, n = pattern.subn(placeholder, current)
        count += n
        return current

    text, count = _replace_quotes(text, description)
    text = replace(_EMAIL, "[email]", text)
    text = replace(_IPV4, "[address]", text)
    for value, placeholder in _system_values(system_info):
        text = replace(_phrase(value), placeholder, text)
    text = replace(_phrase(customer_id), "[customer id]", text)
    if customer_name:
        text = replace(_phrase(customer_name), "[customer]", text)
        for word in _name_words(customer_name):
            text = replace(_phrase(word), "[customer]", text)
    return Scrubbed(text=text, redactions=count)


def _name_words(name: str) -> list[str]:
    return [w for w in _WORDS.findall(name) if len(w) >= MIN_VALUE_CHARS and w.lower() not in _NAME_SUFFIXES]


def _system_values(system_info: dict | None) -> list[tuple[str, str]]:
    """(value, placeholder) for every string in the customer's system record, longest first so
    that "kubernetes (AKS)" goes before "AKS" would."""
    found: list[tuple[str, str]] = []

    def walk(key: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(str(k), v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(key, v)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value).strip()
            if len(text) >= MIN_VALUE_CHARS and key != "customer_id":
                found.append((text, f"[{_placeholder(key)}]"))

    walk("system", system_info or {})
    return sorted(set(found), key=lambda item: -len(item[0]))


def _placeholder(key: str) -> str:
    key = key.lower()
    if "version" in key:
        return "version"
    if key.startswith("application") or key in {"apps", "services"}:
        return "application"
    return key.replace("_", " ")


def _phrase(value: str) -> re.Pattern:
    """Whole-word, case-insensitive, any whitespace between the words."""
    words = [re.escape(part) for part in value.split()]
    return re.compile(r"(?<![\w.])" + r"\s+".join(words) + r"(?![\w])", re.IGNORECASE)


def _replace_quotes(text: str, description: str) -> tuple[str, int]:
    """Every run of QUOTE_WORDS or more consecutive description words in the text (compared
    case-insensitively) becomes QUOTE_MARK."""
    quoted = {tuple(gram) for gram in _ngrams([w.lower() for w in _WORDS.findall(description)], QUOTE_WORDS)}
    if not quoted:
        return text, 0
    tokens = list(_WORDS.finditer(text))
    words = [t.group(0).lower() for t in tokens]
    covered = [False] * len(tokens)
    for i in range(len(tokens) - QUOTE_WORDS + 1):
        if tuple(words[i:i + QUOTE_WORDS]) in quoted:
            for j in range(i, i + QUOTE_WORDS):
                covered[j] = True
    spans, start = [], None
    for i, flag in enumerate(covered + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append((tokens[start].start(), tokens[i - 1].end()))
            start = None
    for begin, end in reversed(spans):
        text = text[:begin] + QUOTE_MARK + text[end:]
    return text, len(spans)


def _ngrams(words: list[str], n: int):
    return (words[i:i + n] for i in range(len(words) - n + 1))
