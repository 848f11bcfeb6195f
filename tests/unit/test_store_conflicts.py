"""StateStore over a scripted DaprClient: what each store answers for a write that lost."""

from __future__ import annotations

import json
from types import SimpleNamespace

import grpc
from dapr.clients.exceptions import DaprGrpcError

from app.store import StateStore
from tests.unit.grpc_errors import RpcFailure


class ExistingKeyClient:
    """A key that exists; a first-write insert of it fails as the given store says."""

    def __init__(self, failure: RpcFailure):
        self.failure = failure

    def save_state(self, store, key, value, etag=None, options=None):
        raise DaprGrpcError(self.failure)

    def get_state(self, store, key, state_metadata=None):
        return SimpleNamespace(data=json.dumps({"first": True}).encode(), etag="1")


def test_a_first_write_that_meets_an_existing_key_is_a_conflict_on_every_store():
    for failure in (RpcFailure(grpc.StatusCode.ABORTED, "possible etag mismatch"),
                    # state.postgresql v2 (and the other SQL stores)
                    RpcFailure(grpc.StatusCode.INTERNAL,
                               "failed saving state in state store analysis-state: no item was updated")):
        store = StateStore(ExistingKeyClient(failure), "analysis-state")
        assert store.insert_if_absent("analysis:T-1:0", {"first": False}) == (False, {"first": True})


def test_other_internal_errors_still_raise():
    store = StateStore(ExistingKeyClient(RpcFailure(grpc.StatusCode.INTERNAL, "connection reset by peer")),
                       "analysis-state")
    try:
        store.insert_if_absent("k", {})
    except DaprGrpcError as error:
        assert "connection reset" in str(error)
    else:
        raise AssertionError("an unrelated INTERNAL error was taken for a conflict")
