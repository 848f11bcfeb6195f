"""An in-memory stand-in for app.store.StateStore with real ETag semantics (a unit-test seam)."""

from __future__ import annotations

import copy
import itertools

from app.store import ETagConflict, StateStore


class MemoryStateStore:
    def __init__(self, name: str = "analysis-state"):
        self.name = name
        self.values: dict[str, tuple[object, str]] = {}
        self.writes: list[str] = []
        self._etags = itertools.count(1)

    def get(self, key):
        if key not in self.values:
            return None, None
        value, etag = self.values[key]
        return copy.deepcopy(value), etag

    def get_value(self, key):
        return self.get(key)[0]

    def get_many(self, keys):
        return {k: copy.deepcopy(self.values[k][0]) for k in keys if k in self.values}

    def get_many_with_etags(self, keys):
        return {k: self.get(k) for k in keys}

    def save(self, key, value, etag=None):
        if etag is not None and (key not in self.values or self.values[key][1] != etag):
            raise ETagConflict(key)
        self._write(key, value)

    def insert_if_absent(self, key, value):
        if key in self.values:
            return False, self.get_value(key)
        self._write(key, value)
        return True, copy.deepcopy(value)

    # The real read-modify-write loop, over this store's get/save/_insert.
    update = StateStore.update

    def _insert(self, key, value):
        return self.insert_if_absent(key, value)[0]

    def _write(self, key, value):
        self.values[key] = (copy.deepcopy(value), str(next(self._etags)))
        self.writes.append(key)
