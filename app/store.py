"""JSON state access through the Dapr state API, with ETags for every read-modify-write."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Callable

from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation
from dapr.clients.grpc._state import Concurrency, Consistency, StateOptions

_FIRST_WRITE = StateOptions(concurrency=Concurrency.first_write, consistency=Consistency.strong)
_STRONG = StateOptions(consistency=Consistency.strong)


class ETagConflict(Exception):
    """Someone else wrote the key since we read it."""


def _is_etag_conflict(error: DaprGrpcError) -> bool:
    # daprd answers Aborted (or FailedPrecondition on some stores) for an ETag mismatch. The SQL
    # stores (state.postgresql v2 among them) answer a first-write insert of a key that exists
    # with a plain "no item was updated" (INTERNAL): a retried insert-if-absent meets it, e.g.
    # a step retried after its replica was replaced mid-write (seen in the rolling upgrade).
    text = str(error).lower()
    return error.code().name in {"ABORTED", "FAILED_PRECONDITION"} or "etag" in text or "no item was updated" in text


class WriteOnceCache:
    """Copies of records that are written once and never change (keys starting with one of
    `prefixes`), so that reading one again costs no call to the sidecar: the status of a waiting
    ticket shows its stored proposal at every read, and the steps read back what an earlier step
    stored. Only what a store answered or accepted is kept, never an absence; the least recently
    used copy goes first beyond `max_entries`. Thread-safe (the API's and the worker's threads)."""

    def __init__(self, prefixes: tuple[str, ...], max_entries: int = 4096):
        self.prefixes, self.max_entries = prefixes, max_entries
        self._copies: OrderedDict[str, str] = OrderedDict()  # key -> JSON: every reader gets its own copy
        self._lock = threading.Lock()

    def holds(self, key: str) -> bool:
        return key.startswith(self.prefixes)

    def get(self, key: str) -> Any | None:
        if not self.holds(key):
            return None
        with self._lock:
            text = self._copies.get(key)
            if text is not None:
                self._copies.move_to_end(key)
        return json.loads(text) if text is not None else None

    def put(self, key: str, value: Any) -> None:
        if value is None or not self.holds(key):
            return
        text = json.dumps(value)
        with self._lock:
            self._copies[key] = text
            self._copies.move_to_end(key)
            while len(self._copies) > self.max_entries:
                self._copies.popitem(last=False)


# A store whose records may all change keeps no copies.
_NO_COPIES = WriteOnceCache(prefixes=())


class StateStore:
    def __init__(self, client: DaprClient, store_name: str, write_once: WriteOnceCache = _NO_COPIES):
        self._client = client
        self.name = store_name
        self._write_once = write_once

    def get(self, key: str) -> tuple[Any | None, str | None]:
        """(value, etag); (None, None) when the key is absent."""
        item = self._client.get_state(self.name, key, state_metadata={})
        if not item.data:
            return None, None
        return json.loads(item.data), item.etag or None

    def get_value(self, key: str) -> Any | None:
        if (kept := self._write_once.get(key)) is not None:
            return kept
        value = self.get(key)[0]
        self._write_once.put(key, value)
        return value

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        found = {key: kept for key in keys if (kept := self._write_once.get(key)) is not None}
        missing = [key for key in keys if key not in found]
        if not missing:
            return found
        items = self._client.get_bulk_state(self.name, missing).items
        for item in items:
            if item.data:
                found[item.key] = json.loads(item.data)
                self._write_once.put(item.key, found[item.key])
        return found

    def get_many_with_etags(self, keys: list[str]) -> dict[str, tuple[Any | None, str | None]]:
        """{key: (value, etag)} in one call; (None, None) for an absent key."""
        found = {item.key: item for item in self._client.get_bulk_state(self.name, keys).items}
        return {key: ((json.loads(found[key].data), found[key].etag or None)
                      if key in found and found[key].data else (None, None)) for key in keys}

    def save_many(self, items: list[tuple[str, Any, str]]) -> None:
        """Writes existing keys in one transaction, each only if unchanged since it was read
        with that etag; ETagConflict (nothing written) otherwise."""
        try:
            self._client.execute_state_transaction(self.name, [
                TransactionalStateOperation(key=key, data=json.dumps(value), etag=etag) for key, value, etag in items])
        except DaprGrpcError as error:
            if _is_etag_conflict(error):
                raise ETagConflict(",".join(key for key, _, _ in items)) from error
            raise

    def save(self, key: str, value: Any, etag: str | None = None) -> None:
        """Writes value; with an etag, only if the key is unchanged since that read."""
        try:
            self._client.save_state(self.name, key, json.dumps(value), etag=etag,
                                    options=_FIRST_WRITE if etag else _STRONG)
        except DaprGrpcError as error:
            if etag and _is_etag_conflict(error):
                raise ETagConflict(key) from error
            raise

    def insert_if_absent(self, key: str, value: Any) -> tuple[bool, Any]:
        """Writes value only if the key does not exist yet; returns (inserted, value now stored).

        The insert is tried first (first-write concurrency without an ETag inserts only if the
        key is absent): the common case costs one call, and the stored value is read only when
        the key already exists."""
        for _ in range(5):
            if self._insert(key, value):
                self._write_once.put(key, value)
                return True, value
            current, _etag = self.get(key)
            if current is not None:
                self._write_once.put(key, current)
                return False, current
        raise ETagConflict(key)

    def update(self, key: str, change: Callable[[Any | None], Any], attempts: int = 20,
               likely_absent: bool = False) -> Any:
        """Read-modify-write with optimistic concurrency: retried when the ETag has moved (or,
        for a key that did not exist, when someone else created it first). `likely_absent`: the
        key is usually new (a first receipt), so the insert is tried before any read: one call
        instead of two when it is, and a read and a write as before when it is not."""
        if likely_absent:
            first = change(None)
            if self._insert(key, first):
                return first
        for _ in range(attempts):
            current, etag = self.get(key)
            new_value = change(current)
            if current is None:
                if self._insert(key, new_value):
                    return new_value
                continue
            try:
                self.save(key, new_value, etag=etag)
                return new_value
            except ETagConflict:
                continue
        raise ETagConflict(key)

    def _insert(self, key: str, value: Any) -> bool:
        """Writes value if the key is absent (first-write concurrency without an ETag);
        False when it already exists."""
        try:
            self._client.save_state(self.name, key, json.dumps(value), options=_FIRST_WRITE)
            return True
        except DaprGrpcError as error:
            if _is_etag_conflict(error):
                return False
            raise

    def delete(self, key: str) -> None:
        self._client.delete_state(self.name, key)
