"""A gRPC error as the Dapr client raises it (code and details), for unit tests."""

from __future__ import annotations

import grpc


class RpcFailure(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str):
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return ()  # no rich status: what DaprGrpcError reads when it wraps the error
