"""The knowledge-base articles: one markdown file per topic, parsed into `Article` models.

Each file in `articles/` has a small front matter (title, category, keywords) and three sections:
"Symptoms" and "Likely causes" as bullet lists, "Resolution" as a numbered list. The slug is the
file name and the article's id everywhere (citations, API, evaluation files).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

ARTICLES_DIR = Path(__file__).parent / "articles"

# The triage rubric's categories: each article's, plus `other` for tickets not about running Dapr
# applications or that no article addresses (no article has it).
OUT_OF_SCOPE_CATEGORY = "other"
CATEGORIES = (
    "connectivity", "state", "pubsub", "workflow", "security",
    "configuration", "observability", "deployment", "ai", OUT_OF_SCOPE_CATEGORY,
)

# slug -> category, copied from shared/support/kb-topics.md; the loader checks the files against it
# so a missing, extra or mis-filed article fails loudly at start-up instead of skewing triage.
TOPIC_CATEGORIES: dict[str, str] = {
    "app-port-mismatch": "connectivity",
    "sidecar-injection": "deployment",
    "mtls-cert-expiry": "security",
    "service-invocation-errors": "connectivity",
    "name-resolution-mdns": "connectivity",
    "state-store-connection": "state",
    "state-etag-conflict": "state",
    "actor-state-store-missing": "workflow",
    "placement-unreachable": "workflow",
    "scheduler-unreachable": "workflow",
    "workflow-stuck": "workflow",
    "workflow-nondeterminism": "workflow",
    "workflow-external-events": "workflow",
    "workflow-history-growth": "workflow",
    "pubsub-not-delivered": "pubsub",
    "pubsub-duplicates": "pubsub",
    "pubsub-dead-letter": "pubsub",
    "pubsub-raw-payload": "pubsub",
    "bindings-cron": "configuration",
    "secret-store-access": "security",
    "component-scopes": "configuration",
    "component-init-failure": "configuration",
    "resiliency-policies": "configuration",
    "tracing-setup": "observability",
    "metrics-prometheus": "observability",
    "logging-config": "observability",
    "api-token-auth": "security",
    "invocation-acl": "security",
    "runtime-upgrade": "deployment",
    "helm-ha-install": "deployment",
    "sidecar-resources": "deployment",
    "max-body-size": "connectivity",
    "grpc-app-protocol": "connectivity",
    "port-conflicts": "connectivity",
    "dapr-init-failures": "deployment",
    "app-health-checks": "observability",
    "conversation-api-setup": "ai",
    "hot-reload-components": "configuration",
    "outbox-transactional": "pubsub",
    "jobs-api-scheduling": "workflow",
}

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)
_SECTION = re.compile(r"^## +(.+?)\s*$", re.MULTILINE)
_BULLET = re.compile(r"^- +")
_NUMBERED = re.compile(r"^\d+\. +")


class Article(BaseModel):
    slug: str
    title: str
    category: str
    keywords: list[str]
    symptoms: list[str]
    causes: list[str]
    steps: list[str]
    body: str  # the markdown after the front matter, for full-text search and display


def parse_article(slug: str, text: str) -> Article:
    """Parses one article file; raises ValueError naming the slug when the layout is wrong."""
    match = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if not match:
        raise ValueError(f"{slug}: missing '---' front matter")
    header, body = match.groups()
    fields = dict(_header_field(slug, line) for line in header.splitlines() if line.strip())
    for required in ("title", "category", "keywords"):
        if not fields.get(required):
            raise ValueError(f"{slug}: front matter lacks {required!r}")
    sections = _sections(body)
    for required in ("Symptoms", "Likely causes", "Resolution"):
        if required not in sections:
            raise ValueError(f"{slug}: missing section '## {required}'")
    article = Article(
        slug=slug,
        title=fields["title"],
        category=fields["category"],
        keywords=[k.strip() for k in fields["keywords"].split(",") if k.strip()],
        symptoms=_list_items(sections["Symptoms"], _BULLET),
        causes=_list_items(sections["Likely causes"], _BULLET),
        steps=_list_items(sections["Resolution"], _NUMBERED),
        body=body.strip(),
    )
    if not (article.symptoms and article.causes and article.steps):
        raise ValueError(f"{slug}: symptoms, causes and steps must each have at least one item")
    return article


@lru_cache
def load_articles(directory: Path = ARTICLES_DIR) -> dict[str, Article]:
    """All articles by slug, validated against the topic table (cached: the files never change
    while the service runs)."""
    articles = {path.stem: parse_article(path.stem, path.read_text(encoding="utf-8"))
                for path in sorted(directory.glob("*.md"))}
    missing = sorted(TOPIC_CATEGORIES.keys() - articles.keys())
    unexpected = sorted(articles.keys() - TOPIC_CATEGORIES.keys())
    if missing or unexpected:
        raise ValueError(f"knowledge base does not match the topic table: "
                         f"missing {missing}, unexpected {unexpected}")
    for slug, article in articles.items():
        if article.category != TOPIC_CATEGORIES[slug]:
            raise ValueError(f"{slug}: category {article.category!r}, "
                             f"topic table says {TOPIC_CATEGORIES[slug]!r}")
    return articles


def _header_field(slug: str, line: str) -> tuple[str, str]:
    key, sep, value = line.partition(":")
    if not sep:
        raise ValueError(f"{slug}: front matter line without ':': {line!r}")
    return key.strip(), value.strip()


def _sections(body: str) -> dict[str, str]:
    parts = _SECTION.split(body)
    # parts = [preamble, heading1, text1, heading2, text2, ...]
    return {heading: text for heading, text in zip(parts[1::2], parts[2::2])}


def _list_items(section: str, marker: re.Pattern[str]) -> list[str]:
    """Top-level list items; indented lines (code blocks, sub-bullets) stay with their item."""
    items: list[list[str]] = []
    for line in section.strip("\n").splitlines():
        if marker.match(line):
            items.append([marker.sub("", line, count=1)])
        elif items and (line.startswith((" ", "\t")) or not line.strip()):
            items[-1].append(line)
    return [_dedent_item(lines) for lines in items]


def _dedent_item(lines: list[str]) -> str:
    first, rest = lines[0], lines[1:]
    indents = [len(line) - len(line.lstrip()) for line in rest if line.strip()]
    cut = min(indents, default=0)
    return "\n".join([first, *(line[cut:] for line in rest)]).strip()
