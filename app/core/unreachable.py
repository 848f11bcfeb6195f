"""Which activity failures are a dependency that cannot be reached, not the step's own fault.

The message broker, a state store or the sidecar being down is an outage that passes: the ticket
workflow waits it out and makes the same call again (app/workflows/ticket_workflow.py,
`run_activity`), where a step that fails for its own reasons goes to a person after its retries.
An activity tells the two apart by the error type it fails with (`DependencyUnavailable`, named
in the contracts: the workflow reads the type from the failure, it imports no app module). A
model that cannot be reached is not waited for: the offline path answers instead
(`ModelCallFailed`).
"""

from __future__ import annotations

import grpc
import httpx

# gRPC answers that say the other end was not reached or did not answer in time.
_UNREACHED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
# The sidecar reached, but it could not reach the component behind it: daprd wraps the
# component's network error in INTERNAL ("error when publishing to topic ...: dial tcp ...:
# connect: connection refused").
_NETWORK_WORDS = ("connection refused", "dial tcp", "i/o timeout", "no such host", "connection reset",
                  "broken pipe", "network is unreachable", "failed to connect", "context deadline exceeded",
                  "no route to host", "server closed the connection", "connection closed")


class ModelCallFailed(RuntimeError):
    """A model call failed, whatever the cause (the model's server down included): the workflow
    falls back to the offline path at once rather than wait for the model."""


class DependencyUnavailable(RuntimeError):
    """An activity failed because a dependency could not be reached. The workflow matches the
    failure on this class's name (`DEPENDENCY_UNAVAILABLE`)."""


def unreachable(error: BaseException) -> bool:
    """True when `error` (or what caused it) is a dependency that could not be reached."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ModelCallFailed):
            return False
        if isinstance(error, DependencyUnavailable | httpx.TransportError | ConnectionError):
            return True
        if isinstance(error, grpc.RpcError) and hasattr(error, "code"):
            code = error.code()
            if code in _UNREACHED:
                return True
            details = (error.details() if hasattr(error, "details") else "") or ""
            if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN) and any(
                    word in details.lower() for word in _NETWORK_WORDS):
                return True
        error = error.__cause__ or error.__context__
    return False
