"""Which activity failures are a dependency that cannot be reached (waited out by the workflow),
and that an activity failing so reports it under the name the workflow matches."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
import httpx
import pytest

from app.activities import deps
from app.core.faults import FaultPlan, InjectedFault
from app.core.unreachable import DependencyUnavailable, unreachable
from app.workflows.contracts import DEPENDENCY_UNAVAILABLE, SearchRequest, SearchResult
from app.workflows.runtime import typed_activity
from tests.unit.grpc_errors import RpcFailure

BROKER_DOWN = ("error when publishing to topic solution-ready in pubsub support-pubsub: redis streams: "
               "error from publish: dial tcp 127.0.0.1:6379: connect: connection refused")


@pytest.mark.parametrize("error", [
    RpcFailure(grpc.StatusCode.INTERNAL, BROKER_DOWN),  # the sidecar up, the broker behind it down
    RpcFailure(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),  # the sidecar down
    RpcFailure(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),  # a store that hangs
    httpx.ConnectError("connection refused"),
    ConnectionRefusedError(111, "Connection refused"),
])
def test_a_dependency_not_reached_is_unreachable(error):
    assert unreachable(error)


def test_the_cause_of_a_wrapping_error_counts():
    try:
        try:
            raise RpcFailure(grpc.StatusCode.INTERNAL, BROKER_DOWN)
        except grpc.RpcError as inner:
            raise RuntimeError("could not announce the proposal") from inner
    except RuntimeError as outer:
        assert unreachable(outer)


@pytest.mark.parametrize("error", [
    RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "topic is empty"),
    RpcFailure(grpc.StatusCode.INTERNAL, "failed to parse the component metadata"),
    RpcFailure(grpc.StatusCode.ABORTED, "possible etag mismatch"),
    ValueError("bad input"),
    InjectedFault("injected fault in propose_solution (FAULT_INJECTION)"),
])
def test_the_steps_own_failure_is_not(error):
    assert not unreachable(error)


def test_the_workflow_matches_the_class_by_its_contract_name():
    assert DependencyUnavailable.__name__ == DEPENDENCY_UNAVAILABLE


@pytest.fixture
def provided():
    deps.provide(SimpleNamespace(faults=FaultPlan()))
    yield
    deps.provide(None)


def test_an_activity_that_cannot_reach_its_dependency_fails_as_dependency_unavailable(provided):
    def search(ctx, request: SearchRequest) -> SearchResult:
        raise RpcFailure(grpc.StatusCode.INTERNAL, BROKER_DOWN)

    with pytest.raises(DependencyUnavailable, match="connection refused") as raised:
        typed_activity("search_knowledge_base", search)(None, SearchRequest(ticket_id="T-1", query="q", k=5)
                                                        .model_dump(mode="json"))
    assert isinstance(raised.value.__cause__, grpc.RpcError)


def test_an_activity_failing_for_its_own_reason_fails_as_it_did(provided):
    def search(ctx, request: SearchRequest) -> SearchResult:
        raise ValueError("no such index")

    with pytest.raises(ValueError, match="no such index"):
        typed_activity("search_knowledge_base", search)(None, SearchRequest(ticket_id="T-1", query="q", k=5)
                                                        .model_dump(mode="json"))


def test_a_model_that_cannot_be_reached_is_not_waited_for():
    from app.core.unreachable import ModelCallFailed

    try:
        try:
            raise RpcFailure(grpc.StatusCode.INTERNAL, "conversation: dial tcp 127.0.0.1:11434: connect: connection refused")
        except grpc.RpcError as inner:
            raise ModelCallFailed("conversation component 'llm': the model is down") from inner
    except ModelCallFailed as error:
        assert not unreachable(error)


def test_the_conversation_writer_reports_any_model_failure_as_a_model_failure():
    from app.core.unreachable import ModelCallFailed
    from app.notifications.conversation import write_with_llm

    class Down:
        def converse_alpha2(self, **kwargs):
            raise RpcFailure(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")

    with pytest.raises(ModelCallFailed, match="UNAVAILABLE|failed to connect"):
        write_with_llm(Down(), "llm", "draft")
