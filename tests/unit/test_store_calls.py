"""StateStore over a scripted DaprClient, counting the calls it makes: with a WriteOnceCache a
write-once record read again costs no call, while every other key, and a record not there yet,
is read from the store each time; an update of a key that is usually new inserts first."""

from __future__ import annotations

import json
from types import SimpleNamespace

import grpc
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._state import Concurrency

from app.domain.stored import WRITE_ONCE_PREFIXES, analysis_key, notification_key
from app.store import StateStore, WriteOnceCache
from tests.unit.grpc_errors import RpcFailure


class CountingClient:
    """An in-memory state API that counts the calls made to it."""

    def __init__(self):
        self.data: dict[str, str] = {}
        self.calls: list[str] = []

    def get_state(self, store, key, state_metadata=None):
        self.calls.append(f"get {key}")
        return SimpleNamespace(data=(self.data.get(key) or "").encode(), etag="1" if key in self.data else None)

    def get_bulk_state(self, store, keys):
        self.calls.append(f"bulk {','.join(keys)}")
        return SimpleNamespace(items=[SimpleNamespace(key=k, data=(self.data.get(k) or "").encode()) for k in keys])

    def save_state(self, store, key, value, etag=None, options=None):
        self.calls.append(f"save {key}")
        first_write = getattr(options, "concurrency", None) == Concurrency.first_write
        if first_write and etag is None and key in self.data:  # an insert of a key that exists
            raise DaprGrpcError(RpcFailure(grpc.StatusCode.ABORTED, "possible etag mismatch"))
        self.data[key] = value


def store_with_cache(max_entries: int = 100) -> tuple[StateStore, CountingClient]:
    client = CountingClient()
    return StateStore(client, "analysis-state", WriteOnceCache(WRITE_ONCE_PREFIXES, max_entries)), client


def test_a_record_stored_once_is_read_back_without_a_call():
    store, client = store_with_cache()
    key = analysis_key("T-1", 0)
    assert store.insert_if_absent(key, {"proposal": {"summary": "s"}}) == (True, {"proposal": {"summary": "s"}})
    client.calls.clear()
    assert store.get_value(key) == {"proposal": {"summary": "s"}}
    assert store.get_many([key]) == {key: {"proposal": {"summary": "s"}}}
    assert client.calls == []


def test_each_reader_gets_its_own_copy():
    store, _ = store_with_cache()
    key = notification_key("T-2", "resolved")
    store.insert_if_absent(key, {"subject": "a"})
    store.get_value(key)["subject"] = "changed by a reader"
    assert store.get_value(key) == {"subject": "a"}


def test_an_absent_record_and_other_keys_are_read_every_time():
    store, client = store_with_cache()
    assert store.get_value(analysis_key("T-3", 0)) is None
    client.data[analysis_key("T-3", 0)] = json.dumps({"proposal": {}})  # another replica stored it
    assert store.get_value(analysis_key("T-3", 0)) == {"proposal": {}}
    store.insert_if_absent("inbox:solution-ready:T-3", {"n": 1})  # read-modify-written: never kept
    client.calls.clear()
    store.get_value("inbox:solution-ready:T-3")
    store.get_value("inbox:solution-ready:T-3")
    store.get_value(analysis_key("T-3", 0))
    assert client.calls == ["get inbox:solution-ready:T-3", "get inbox:solution-ready:T-3"]


def test_a_bulk_read_asks_only_for_what_is_not_kept():
    store, client = store_with_cache()
    kept, other = analysis_key("T-4", 0), notification_key("T-4", "resolved")
    store.insert_if_absent(kept, {"a": 1})
    client.data[other] = json.dumps({"b": 2})
    client.calls.clear()
    assert store.get_many([kept, other]) == {kept: {"a": 1}, other: {"b": 2}}
    assert client.calls == [f"bulk {other}"]
    assert store.get_many([kept, other]) == {kept: {"a": 1}, other: {"b": 2}} and len(client.calls) == 1


def test_a_losing_insert_keeps_what_the_store_holds_and_the_oldest_copy_goes_first():
    store, client = store_with_cache(max_entries=2)
    client.data[analysis_key("T-5", 0)] = json.dumps({"first": True})
    assert store.insert_if_absent(analysis_key("T-5", 0), {"first": False}) == (False, {"first": True})
    store.insert_if_absent(analysis_key("T-6", 0), {"n": 6})
    store.insert_if_absent(analysis_key("T-7", 0), {"n": 7})
    client.calls.clear()
    assert store.get_value(analysis_key("T-5", 0)) == {"first": True}  # evicted: read again
    assert client.calls == [f"get {analysis_key('T-5', 0)}"]


def test_an_update_of_a_key_likely_absent_inserts_with_one_call_and_still_updates_an_existing_one():
    store, client = store_with_cache()
    append = lambda record: {"n": (record or {"n": 0})["n"] + 1}  # noqa: E731
    assert store.update("inbox:solution-ready:T-8", append, likely_absent=True) == {"n": 1}
    assert client.calls == ["save inbox:solution-ready:T-8"]
    client.calls.clear()
    assert store.update("inbox:solution-ready:T-8", append, likely_absent=True) == {"n": 2}
    assert client.calls == ["save inbox:solution-ready:T-8", "get inbox:solution-ready:T-8",
                            "save inbox:solution-ready:T-8"]
    assert json.loads(client.data["inbox:solution-ready:T-8"]) == {"n": 2}
