"""A ticket's one-line summary for engineers."""

from __future__ import annotations


def summarize(description: str, limit: int = 160) -> str:
    """First sentence (or line) of the ticket, cut to a readable length."""
    text = " ".join(description.split())
    for stop in (". ", "? ", "! "):
        if stop in text[:limit]:
            text = text[: text.index(stop) + 1]
            break
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
