"""The mail itself, without I/O: the recipient check, the subject with the ticket id, the HTML
body and the metadata of the `bindings.smtp` request.

What bindings.smtp (components-contrib v1.18.0, used by daprd 1.18.1) can set per request:
emailFrom, emailTo, emailCC, emailBCC, subject and priority (written as `X-priority`). It
writes no other header and always sends the body as text/html, so the ticket id travels in the
subject and in the body, not in a header of its own.
"""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any

# One plain address: the binding splits emailTo on ";", so an address must not carry one (or a
# comma, angle brackets, quotes, whitespace or line breaks) to reach exactly one recipient.
_ADDRESS = re.compile(r"^[^@\s;,<>\"']+@[^@\s;,<>\"'.][^@\s;,<>\"']*$")
MAX_ADDRESS_LENGTH = 254

# bindings.smtp priority: 1 (highest) .. 5 (lowest), 3 by default.
_PRIORITY = {"critical": 1, "high": 2, "medium": 3, "low": 4}


def customer_email(customer_record: Any) -> str | None:
    """The customer's contact email (a customer-state record, as dict or model), or None when
    the record is missing or has none. Not validated here: see is_deliverable_address."""
    if customer_record is None:
        return None
    value = (customer_record.get("contact_email") if isinstance(customer_record, dict)
             else getattr(customer_record, "contact_email", None))
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def is_deliverable_address(address: str) -> bool:
    return len(address) <= MAX_ADDRESS_LENGTH and bool(_ADDRESS.match(address))


def email_subject(subject: str, ticket_id: str) -> str:
    """The notification's subject on one line, with the ticket id in it."""
    one_line = " ".join(subject.split())
    return one_line if ticket_id in one_line else f"[{ticket_id}] {one_line}".strip()


def delivery_reference(notification_id: str) -> str:
    """The mail's own reference, in its body: what the mail server's log is searched for when
    an attempt's outcome is unknown. Fixed length and one word, so no reference is part of
    another (a search matches substrings)."""
    return "ref-" + hashlib.sha256(notification_id.encode()).hexdigest()[:24]


def email_html(body: str, ticket_id: str, reference: str | None = None) -> str:
    """The plain-text notification as HTML (the binding sends text/html only): escaped,
    paragraphs at blank lines, line breaks kept, and the ticket id (and the mail's reference)
    as a reference line."""
    paragraphs = [p for p in re.split(r"\n\s*\n", body.replace("\r\n", "\n").strip()) if p.strip()]
    rendered = "\n".join("<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>"
                         for p in paragraphs)
    footer = f"Support ticket: {html.escape(ticket_id)}" + (f" · Reference: {reference}" if reference else "")
    return ("<!DOCTYPE html>\n<html><body>\n" + rendered +
            f'\n<p style="color:#666">{footer}</p>\n</body></html>\n')


def email_priority(ticket_priority: str | None) -> int:
    return _PRIORITY.get((ticket_priority or "").lower(), 3)


def binding_metadata(to_address: str, subject: str, sender: str, priority: int) -> dict[str, str]:
    """Request metadata of `create` on bindings.smtp (it overrides the component's values)."""
    return {"emailTo": to_address, "emailFrom": sender, "subject": subject, "priority": str(priority)}
