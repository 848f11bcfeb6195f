"""The evaluation's past-case figures: cases seeded from labelled tickets, never a ticket's own."""

from __future__ import annotations

from app.eval import evaluate_ticket, seed_cases, summarise

PORT_TICKETS = [
    {"id": "A-1", "description": "Our production checkout is down: the sidecar gets connection refused to the app "
                                 "on port 5000 since the deploy, the app listens on 8080",
     "expected_articles": ["app-port-mismatch"], "expected_category": "connectivity", "expected_priority": "critical"},
    {"id": "A-2", "description": "Dapr sidecar cannot reach my app: connection refused on the app port, the app "
                                 "really listens on 3000", "expected_articles": ["app-port-mismatch"],
     "expected_category": "connectivity", "expected_priority": "high"},
    {"id": "OUT-1", "description": "Please refund the duplicate invoice for our support plan",
     "expected_articles": [], "expected_category": "other", "expected_priority": "low"},
]


def test_seeded_cases_are_the_labelled_in_scope_tickets():
    index = seed_cases(PORT_TICKETS)
    assert [c.ticket_id for c in index.cases] == ["A-1", "A-2"]
    assert index.cases[0].cited_articles == ["app-port-mismatch"] and index.cases[0].approver == "eval-seed"
    assert "Steps:\n1. " in index.cases[0].text


def test_a_ticket_is_helped_only_by_another_tickets_case():
    alone = seed_cases(PORT_TICKETS[:1])
    outcome = evaluate_ticket(PORT_TICKETS[0], cases=alone)
    assert outcome.past_case_cited is False and outcome.article_hit_with_cases is True
    both = seed_cases(PORT_TICKETS)
    outcome = evaluate_ticket(PORT_TICKETS[0], cases=both)
    assert outcome.past_case_cited is True and outcome.past_case_on_problem is True
    figures = summarise([outcome, evaluate_ticket(PORT_TICKETS[2], cases=both)])
    assert figures["article_recall_at_3_with_past_cases"] == 1.0 and figures["past_case_cited"] == 1.0
    assert figures["past_case_on_the_same_problem"] == 1.0
