"""What the mail server says it accepted: the check a delivery makes before sending again when an
earlier attempt's outcome is unknown (its process died, or the call broke mid-send).

bindings.smtp cannot set a Message-ID, so the mail carries a reference of its own in its body
(app/delivery/message.py: delivery_reference) and the check searches the server's message log for
it. The log implemented here is Mailpit's HTTP API (`make run` and the tests run Mailpit); another
relay with a searchable log plugs in by implementing `accepted`. Without a log
(EMAIL_SENT_LOG_URL unset) an unknown outcome is never resent: a person is asked instead.
"""

from __future__ import annotations

from typing import Protocol

import httpx


class SentLogUnavailable(Exception):
    """The log could not be asked: the attempt fails and the workflow's retry asks again."""


class SentLog(Protocol):
    def accepted(self, reference: str) -> bool: ...


class MailpitSentLog:
    """Mailpit's `GET /api/v1/search`: a quoted reference matches the message text."""

    def __init__(self, base_url: str, timeout: float = 5.0):
        # The client is built once (services at startup) and reused: one connection pool.
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def accepted(self, reference: str) -> bool:
        try:
            response = self._client.get("/api/v1/search", params={"query": f'"{reference}"', "limit": 1})
            response.raise_for_status()
            return int(response.json().get("messages_count", 0)) > 0
        except (httpx.HTTPError, ValueError) as error:
            raise SentLogUnavailable(f"the mail server's log did not answer: {error}"[:300]) from error

    def close(self) -> None:
        self._client.close()
