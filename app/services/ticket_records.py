"""The service's own records of each ticket, kept in analysis-state beside the workflows:

- `timeline:{ticket}`: every event with time and actor (filed, triaged, each KB query, ...).
  Events carry a key (ticket + step), so an activity retried after a crash adds nothing twice.
- `ticket:{ticket}`: a summary (stage, priority, customer, awaiting_decision, ...) for listing.
- `index:tickets`: ticket ids in filing order, for listing newest first.

The workflow is the source of truth for where a ticket is; these records follow it, written by
the activities and routes that cause each change.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from app.store import ETagConflict, StateStore

INDEX_KEY = "index:tickets"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def timeline_key(ticket_id: str) -> str:
    return f"timeline:{ticket_id}"


def summary_key(ticket_id: str) -> str:
    return f"ticket:{ticket_id}"


def event(key: str, kind: str, actor: str, /, at: str | None = None, **details: Any) -> dict:
    """A timeline event; `key` names the ticket's step so a repeat is recognised."""
    return {"key": key, "kind": kind, "actor": actor, "at": at or now_iso(), "details": details}


def record_events(store: StateStore, ticket_id: str, events: list[dict], **summary: Any) -> None:
    """Appends events to the ticket's timeline (each key once) and merges `summary` fields
    (stage, priority, ...) into the ticket's summary: both read in one call and written in one
    transaction (each under its ETag) once they exist; created one by one the first time."""

    def append(timeline: dict | None) -> dict:
        timeline = timeline or {"ticket_id": ticket_id, "events": []}
        seen = {e["key"] for e in timeline["events"]}
        timeline["events"].extend(e for e in events if e["key"] not in seen)
        return timeline

    if not summary:
        store.update(timeline_key(ticket_id), append)
        return
    keys = [timeline_key(ticket_id), summary_key(ticket_id)]
    for _ in range(20):
        current = store.get_many_with_etags(keys)
        if any(value is None for value, _ in current.values()):
            store.update(keys[0], append)
            update_summary(store, ticket_id, **summary)
            return
        (timeline, timeline_etag), (found, summary_etag) = current[keys[0]], current[keys[1]]
        try:
            store.save_many([(keys[0], append(timeline), timeline_etag),
                             (keys[1], _merged_summary(found, ticket_id, summary), summary_etag)])
            return
        except ETagConflict:
            continue
    raise ETagConflict(keys[0])


def update_summary(store: StateStore, ticket_id: str, **fields: Any) -> dict:
    return store.update(summary_key(ticket_id), lambda current: _merged_summary(current, ticket_id, fields))


def _merged_summary(current: dict | None, ticket_id: str, fields: dict[str, Any]) -> dict:
    return {**(current or {"ticket_id": ticket_id}), **fields, "updated_at": now_iso()}


def index_ticket(store: StateStore, ticket_id: str) -> None:
    def add(index: dict | None) -> dict:
        index = index or {"ids": []}
        if ticket_id not in index["ids"]:
            index["ids"].append(ticket_id)
        return index

    store.update(INDEX_KEY, add)


def get_timeline(store: StateStore, ticket_id: str) -> list[dict]:
    timeline = store.get_value(timeline_key(ticket_id)) or {"events": []}
    return sorted(timeline["events"], key=lambda e: e["at"])


def list_summaries(store: StateStore, filters: dict[str, Any], limit: int,
                   cursor: str | None) -> tuple[list[dict], str | None]:
    """Summaries newest first matching every filter; cursor = the last id of the previous page."""
    ids = list(reversed((store.get_value(INDEX_KEY) or {"ids": []})["ids"]))
    if cursor is not None:
        ids = ids[ids.index(cursor) + 1:] if cursor in ids else []
    page: list[dict] = []
    batch = max(limit, 50)
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        found = store.get_many([summary_key(i) for i in chunk])
        for ticket_id in chunk:
            summary = found.get(summary_key(ticket_id))
            if summary and all(summary.get(k) == v for k, v in filters.items()):
                page.append(summary)
                if len(page) == limit:
                    more = ticket_id != ids[-1]
                    return page, (ticket_id if more else None)
    return page, None
