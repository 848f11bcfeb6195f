"""Every unary call to the sidecar gets a deadline: the default, or its method's own."""

from __future__ import annotations

from types import SimpleNamespace

from app.core.sidecar_deadline import BINDING_DEADLINE_S, MODEL_MARGIN_S, sidecar_deadline


def call(interceptor, method: str, timeout: float | None = None):
    details = SimpleNamespace(method=method, timeout=timeout, metadata=[("dapr-api-token", "t")],
                              credentials=None, wait_for_ready=None, compression=None)
    seen = {}

    def continuation(sent, request):
        seen.update(details=sent, request=request)
        return "answer"

    assert interceptor.intercept_unary_unary(continuation, details, "request") == "answer"
    assert seen["request"] == "request"
    return seen["details"]


def test_a_call_without_a_deadline_gets_the_sidecar_timeout():
    sent = call(sidecar_deadline(10, 60), "/dapr.proto.runtime.v1.Dapr/GetState")
    assert sent.timeout == 10
    assert sent.method == "/dapr.proto.runtime.v1.Dapr/GetState"
    assert sent.metadata == [("dapr-api-token", "t")]


def test_slow_by_design_calls_get_their_own_deadline():
    interceptor = sidecar_deadline(10, 60)
    assert call(interceptor, "/dapr.proto.runtime.v1.Dapr/ConverseAlpha2").timeout == 60 + MODEL_MARGIN_S
    assert call(interceptor, "/dapr.proto.runtime.v1.Dapr/InvokeBinding").timeout == BINDING_DEADLINE_S


def test_a_deadline_the_caller_set_is_kept():
    assert call(sidecar_deadline(10, 60), "/dapr.proto.runtime.v1.Dapr/GetState", timeout=2.5).timeout == 2.5
