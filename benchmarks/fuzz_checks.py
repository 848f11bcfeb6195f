"""Schemathesis hooks for the service (loaded through SCHEMATHESIS_HOOKS by benchmarks/fuzz.py):
every 4xx answers a JSON body that carries a message."""

from __future__ import annotations

import json

import schemathesis


def error_message(body) -> str | None:
    """The message of an error body: `detail` as text, or the validation errors' `msg`s."""
    if not isinstance(body, dict):
        return None
    detail = body.get("detail")
    if isinstance(detail, str) and detail.strip():
        return detail
    if isinstance(detail, list) and detail and all(isinstance(e, dict) and str(e.get("msg", "")).strip()
                                                   for e in detail):
        return "; ".join(str(e["msg"]) for e in detail)
    return None


@schemathesis.check
def client_error_has_json_message(ctx, response, case):
    """A 4xx says why: a JSON body (`application/json`) with a non-empty `detail` message."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = ";".join(response.headers.get("content-type", []))
    if "application/json" not in content_type:
        raise AssertionError(f"{response.status_code} answered {content_type or 'no content type'}, not JSON: "
                             f"{response.content[:200]!r}")
    try:
        body = json.loads(response.content or b"null")
    except ValueError as error:
        raise AssertionError(f"{response.status_code} body is not JSON ({error}): {response.content[:200]!r}") from None
    if error_message(body) is None:
        raise AssertionError(f"{response.status_code} body has no message: {body!r}"[:400])
    return None
