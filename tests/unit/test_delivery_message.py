"""The mail composed for bindings.smtp: recipient check, subject, HTML body, metadata."""

from __future__ import annotations

import pytest

from app.delivery.message import (binding_metadata, customer_email, email_html, email_priority,
                                  email_subject, is_deliverable_address)
from app.domain.customer import Customer


def test_customer_email_from_dict_and_model():
    assert customer_email({"customer_id": "C1", "contact_email": "  ops@acme.example "}) == "ops@acme.example"
    model = Customer(customer_id="C1", name="Acme", plan="enterprise", contact_email="ops@acme.example")
    assert customer_email(model) == "ops@acme.example"


@pytest.mark.parametrize("record", [None, {}, {"contact_email": None}, {"contact_email": "   "},
                                    {"contact_email": 42},
                                    Customer(customer_id="C1", name="Acme", plan="basic")])
def test_customer_email_absent(record):
    assert customer_email(record) is None


@pytest.mark.parametrize("address", ["ops@acme.example", "first.last+tag@sub.example.org", "it@localhost"])
def test_deliverable_addresses(address):
    assert is_deliverable_address(address)


@pytest.mark.parametrize("address", [
    "no-at-sign.example", "two@@acme.example", "a@b.example;c@d.example",  # ";" = a second recipient
    "a@b.example,c@d.example", "Ops <ops@acme.example>", "ops @acme.example",
    "ops@acme.example\r\nBcc: x@evil.example", "ops@.example", "@acme.example", "ops@", "a" * 250 + "@b.example"])
def test_undeliverable_addresses(address):
    assert not is_deliverable_address(address)


def test_subject_keeps_the_ticket_id_and_stays_on_one_line():
    assert email_subject("Ticket TKT-1: proposed solution", "TKT-1") == "Ticket TKT-1: proposed solution"
    assert email_subject("Your answer", "TKT-2") == "[TKT-2] Your answer"
    assert email_subject("Ticket TKT-3:\r\nBcc: x@evil.example", "TKT-3") == "Ticket TKT-3: Bcc: x@evil.example"


def test_html_body_escapes_and_keeps_paragraphs_and_lines():
    body = "Hello Acme,\n\nRun these steps:\n1. <restart> the sidecar & app\n2. check\n\nBye"
    html = email_html(body, "TKT-9")
    assert "<p>Hello Acme,</p>" in html
    assert "<p>Run these steps:<br>\n1. &lt;restart&gt; the sidecar &amp; app<br>\n2. check</p>" in html
    assert "<p>Bye</p>" in html
    assert "Support ticket: TKT-9" in html
    assert "<restart>" not in html
    # bindings.smtp unquotes a body that is a quoted string; an HTML document never is one.
    assert not html.startswith(('"', "`", "'"))


def test_priority_follows_the_ticket():
    assert [email_priority(p) for p in ("critical", "high", "medium", "low", None, "weird")] == [1, 2, 3, 4, 3, 3]


def test_binding_metadata_names_are_the_ones_bindings_smtp_reads():
    assert binding_metadata("ops@acme.example", "Ticket T: x", "Support <s@x.example>", 2) == {
        "emailTo": "ops@acme.example", "emailFrom": "Support <s@x.example>", "subject": "Ticket T: x",
        "priority": "2"}


def test_every_sample_customer_has_a_deliverable_address():
    from setup_sample_data import CUSTOMERS

    addresses = {cid: customer_email(record) for cid, record in CUSTOMERS.items()}
    assert addresses == {"CUST001": "ops@acme.example", "CUST002": "dev@techstart.example",
                         "CUST003": "it@basicuser.example"}
    assert all(is_deliverable_address(a) for a in addresses.values())
