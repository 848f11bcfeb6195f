"""Resolved cases in analysis-state: engineer-approved solutions of completed tickets, kept apart
from the curated articles.

Layout (any Dapr state store, no query API needed):
- `case:{ticket_id}`: the case itself, written once (insert if absent, so a retried or replayed
  index step changes nothing) and afterwards only by a retraction (ETag-checked).
- `cases-index:{NN}`, NN in 00..15: the ids of the cases whose ticket id hashes to that shard.
  Listing reads the 16 shards in one bulk call, then the cases in bulk. Each shard is rewritten
  by about 1/16 of the new cases and never by a retraction, so no key is written by every case;
  a shard's ETag tells a reader whether anything was added since it last looked.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Iterable

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # the evaluation command searches cases without the Dapr client installed
    from app.store import StateStore

CASE_SHARDS = 16
BULK_BATCH = 100


def case_key(ticket_id: str) -> str:
    return f"case:{ticket_id}"


def shard_key(shard: int) -> str:
    return f"cases-index:{shard:02d}"


def shard_of(ticket_id: str) -> int:
    return int.from_bytes(hashlib.sha256(ticket_id.encode()).digest()[:4], "big") % CASE_SHARDS


SHARD_KEYS = [shard_key(n) for n in range(CASE_SHARDS)]


class ResolvedCase(BaseModel):
    ticket_id: str
    text: str  # the approved solution, scrubbed of the customer's data; never the description
    category: str
    cited_articles: list[str] = Field(default_factory=list)
    approver: str
    resolved_at: str
    edited: bool = False
    redactions: int = 0
    retracted: bool = False
    retracted_by: str | None = None
    retracted_at: str | None = None
    retraction_reason: str | None = None


class CaseNotFound(Exception):
    pass


class CaseStore:
    def __init__(self, store: "StateStore"):
        self.store = store

    def add(self, case: ResolvedCase) -> tuple[bool, ResolvedCase]:
        """(created, the case now stored). The first case of a ticket wins; its id is then
        listed in its shard (again on a retry, in case the first attempt stopped in between)."""
        created, stored = self.store.insert_if_absent(case_key(case.ticket_id), case.model_dump(mode="json"))
        self._list(case.ticket_id)
        return created, ResolvedCase.model_validate(stored)

    def _list(self, ticket_id: str, attempts: int = 20) -> None:
        from app.store import ETagConflict

        key = shard_key(shard_of(ticket_id))
        for _ in range(attempts):
            current, etag = self.store.get(key)
            if current is None:
                inserted, current = self.store.insert_if_absent(key, {"ids": [ticket_id]})
                if inserted:
                    return
                continue
            if ticket_id in current["ids"]:
                return  # already listed: no write
            try:
                self.store.save(key, {"ids": sorted({*current["ids"], ticket_id})}, etag=etag)
                return
            except ETagConflict:
                continue
        raise ETagConflict(key)

    def shards(self) -> tuple[list[str], tuple[str | None, ...]]:
        """(every listed case id, the shards' ETags) in one bulk read."""
        found = self.store.get_many_with_etags(SHARD_KEYS)
        ids = sorted({i for key in SHARD_KEYS for i in (found[key][0] or {}).get("ids", [])})
        return ids, tuple(found[key][1] for key in SHARD_KEYS)

    def get(self, ticket_id: str) -> ResolvedCase | None:
        value = self.store.get_value(case_key(ticket_id))
        return ResolvedCase.model_validate(value) if value else None

    def get_many(self, ticket_ids: Iterable[str]) -> list[ResolvedCase]:
        ids = list(ticket_ids)
        cases = []
        for start in range(0, len(ids), BULK_BATCH):
            found = self.store.get_many([case_key(i) for i in ids[start:start + BULK_BATCH]])
            cases += [ResolvedCase.model_validate(v) for v in found.values()]
        return sorted(cases, key=lambda case: (case.resolved_at, case.ticket_id))

    def all(self) -> list[ResolvedCase]:
        return self.get_many(self.shards()[0])

    def retract(self, ticket_id: str, by: str, at: str, reason: str | None = None) -> ResolvedCase:
        """Marks the case retracted (never cited again); a case already retracted stays as it
        was. CaseNotFound when the ticket has no case."""
        from app.store import ETagConflict

        key = case_key(ticket_id)
        for _ in range(20):
            current, etag = self.store.get(key)
            if current is None:
                raise CaseNotFound(ticket_id)
            case = ResolvedCase.model_validate(current)
            if case.retracted:
                return case
            case = case.model_copy(update={"retracted": True, "retracted_by": by, "retracted_at": at,
                                           "retraction_reason": reason})
            try:
                self.store.save(key, case.model_dump(mode="json"), etag=etag)
                return case
            except ETagConflict:
                continue
        raise ETagConflict(key)
