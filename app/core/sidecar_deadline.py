"""A deadline on every unary call the app's Dapr client makes to its sidecar.

The SDK sets none unless DAPR_API_TIMEOUT_SECONDS is set, and then one for every call alike: a
store that hangs held a filing (and an activity's thread) for as long as it hung. With this, a
call fails after SIDECAR_TIMEOUT: the API answers 503 with Retry-After (app/api/errors.py) and an
activity's retry policy retries. The calls that wait on something slow by design get longer ones:
a model call through the Conversation API (LLM_TIMEOUT) and a mail sent through the output
binding (its resiliency timeout, resources/notification-email-resiliency.yaml, 30 s).
"""

from __future__ import annotations

import collections

import grpc

# The binding's own timeout (30 s) plus time for daprd to answer that it passed.
BINDING_DEADLINE_S = 40.0
# Past the model's own timeout, so the model client's error is what the caller sees.
MODEL_MARGIN_S = 5.0


class _CallDetails(collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials",
                                                           "wait_for_ready", "compression")),
                   grpc.ClientCallDetails):
    pass


class SidecarDeadline(grpc.UnaryUnaryClientInterceptor):
    """Sets `default` seconds on each call that has no deadline of its own, or the method's
    entry in `per_method` (keyed by the RPC's name, e.g. "ConverseAlpha2")."""

    def __init__(self, default: float, per_method: dict[str, float] | None = None):
        self.default = default
        self.per_method = per_method or {}

    def deadline_for(self, method: str) -> float:
        return self.per_method.get(method.rsplit("/", 1)[-1], self.default)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        if client_call_details.timeout is None:
            client_call_details = _CallDetails(
                client_call_details.method, self.deadline_for(client_call_details.method),
                client_call_details.metadata, client_call_details.credentials,
                getattr(client_call_details, "wait_for_ready", None),
                getattr(client_call_details, "compression", None))
        return continuation(client_call_details, request)


def sidecar_deadline(sidecar_timeout: float, llm_timeout: float) -> SidecarDeadline:
    model = llm_timeout + MODEL_MARGIN_S
    return SidecarDeadline(sidecar_timeout, {"ConverseAlpha1": model, "ConverseAlpha2": model,
                                             "InvokeBinding": max(BINDING_DEADLINE_S, sidecar_timeout)})
