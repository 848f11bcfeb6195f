"""The scope decision: measured evidence (retrieval, coverage, Dapr language, runtime vocabulary,
subject) against a calibrated threshold, and the triage signals that decide on their own."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from app.eval import calibrate_scope, load_tickets
from app.knowledge.search import get_knowledge_search
from app.triage.classify import category_cues, classify_ticket, kb_category
from app.triage.scope import (
    SCOPE_THRESHOLD,
    assess_scope,
    kb_likelihood_ratio,
    measure_scope,
    customer_values,
    topic_words,
    without_negating_clauses,
)


def evidence(description: str):
    hits = get_knowledge_search().search(description, k=2)
    return measure_scope(description, hits[0].score if hits else 0.0, [hit.slug for hit in hits])


def test_the_score_is_the_mean_of_the_five_measurements():
    found = evidence("The sidecar gets connection refused from the app on port 5000 in staging.")
    parts = (found.retrieval, found.coverage, found.dapr_language, found.runtime, found.subject)
    assert all(0.0 <= part <= 1.0 for part in parts)
    assert found.score == round(sum(parts) / 5, 3)


def test_a_sidecar_problem_is_in_scope_on_every_measurement():
    found = evidence("Production checkout is down: the sidecar gets connection refused from the "
                     "app on port 5000.")
    assert found.runtime_word == "sidecar" and found.runtime == 1.0
    assert found.dapr_language == 1.0
    assert found.coverage > 0.85
    assert found.score > 0.9
    scope = assess_scope("Production checkout is down: the sidecar gets connection refused from "
                         "the app on port 5000.")
    assert scope.in_scope
    assert scope.reason == f"scope score {scope.score:.2f} at or above {SCOPE_THRESHOLD}"


def test_a_billing_ticket_scores_low_and_names_the_words_no_article_explains():
    description = "Our last invoice bills the enterprise plan twice; please refund one payment."
    found = evidence(description)
    assert found.runtime < 0.1  # its only runtime-vocabulary word is "one"
    assert found.dapr_language < 0.1
    assert found.unexplained[:2] == ["invoice", "refund"]
    scope = assess_scope(description)
    assert not scope.in_scope
    assert scope.score < 0.45
    assert scope.reason.startswith(f"scope score {scope.score:.2f} below {SCOPE_THRESHOLD}")
    assert any(signal.startswith("coverage:") and "invoice" in signal for signal in scope.signals)


def test_a_tool_one_topic_mentions_is_not_runtime_vocabulary():
    # Docker is in the `dapr init` and self-hosted articles only: not the runtime's own word.
    found = evidence("Docker Desktop will not start on my Mac after the macOS update.")
    assert found.runtime_word == "start"
    assert found.runtime < 0.5
    assert not assess_scope("Docker Desktop will not start on my Mac after the macOS update.").in_scope


def test_business_words_do_not_push_a_real_dapr_problem_out():
    description = ("Our invoicing service subscribes to the orders topic and each invoice event "
                   "arrives twice in staging.")
    found = evidence(description)
    # "invoicing" names the customer's own service: neither explained nor unexplained.
    assert "invoicing" not in found.unexplained and "invoice" in found.unexplained
    assert found.runtime == 1.0  # "subscribes": the pub/sub vocabulary of many articles
    assert assess_scope(description).in_scope


def test_values_the_customer_writes_name_the_customers_system_not_the_topic():
    values = customer_values("Our billing service stopped reading the 'ledger-sync' topic after "
                             "we moved the route to /hooks/v3; it last ran at 2am. Our Flask app too.")
    assert {"billing", "ledger-sync", "hooks", "v3", "2am"} <= values
    # A product's name qualifying the app says what it is written in (the subject signal's job),
    # and a quoted message of several words is evidence, not a value.
    assert "flask" not in values
    assert not customer_values("The sidecar logs 'connection refused' for the app.")


def test_the_customers_values_do_not_count_against_a_dapr_ticket():
    named = evidence("The sidecar of the orders app logs that the subscription route "
                     "/fulfilment/v2 of the 'order-fulfilment' topic is not found.")
    assert named.unexplained == ["found"]


def test_product_names_are_not_runtime_vocabulary():
    # "Dapr" and "Redis" name products: they do not say the ticket is about the runtime's mechanics.
    found = evidence("Is there a date when Dapr will support Redis for everything?")
    assert found.runtime_word not in ("dapr", "redis")
    assert found.runtime < 1.0


def test_another_product_as_the_subject_counts_against():
    found = evidence("Our Zorblax load balancer drops every request to the orders service.")
    assert found.other_product == "Zorblax" and found.subject == 0.0
    assert "zorblax" in found.unexplained  # a name English does not know is not an identifier
    assert any(s.startswith("subject: Zorblax, another product") for s in found.signals())


def test_a_name_that_is_not_the_subject_or_qualifies_the_app_does_not():
    for description in (
            "Our Zorblax app cannot reach its sidecar on port 3500.",  # what the app is written in
            "The sidecar cannot reach the app since we moved to Zorblax.",  # not the subject
            "Since Friday the sidecar cannot reach the app.",  # a calendar word
            "Our Dapr sidecar cannot reach the app."):  # the product itself
        assert evidence(description).other_product is None, description


def test_a_comma_closes_the_opening_phrase():
    # The setup listed after a comma is not the subject of the ticket.
    found = evidence("Self-hosted, three Zorblax machines, test setup. The sidecar cannot reach the app.")
    assert found.other_product is None


def test_a_possessive_is_as_common_as_its_word():
    found = evidence("Several pods failing Tuesday's checks: the sidecar cannot reach the app.")
    assert found.other_product is None


def test_an_opening_that_ends_in_a_colon_announces_the_subject():
    found = evidence("Everything is down: our Zorblax load balancer drops every request.")
    assert found.other_product == "Zorblax"
    # A colon after a phrase that has a subject of its own leaves it the subject.
    assert evidence("The sidecar is down: Zorblax says nothing.").other_product is None


def test_likelihood_ratio_favours_knowledge_base_words():
    assert kb_likelihood_ratio("sidecar") == pytest.approx(4.47, abs=0.01)
    ratios = [kb_likelihood_ratio(word) for word in ("daprd", "docker", "fails")]
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] > 0
    # A word the articles never use: log10(1 - KB_MIX), whatever its English frequency.
    assert kb_likelihood_ratio("invoice") == pytest.approx(-1.0)
    assert kb_likelihood_ratio("terraform") == pytest.approx(-1.0)


def test_topic_words_leave_out_environment_numbers_and_stopwords():
    words = topic_words("In production on port 5000 the sidecar fails on my laptop, see the 2 calls")
    assert words == ["port", "sidecar", "fails", "see", "calls"]


def test_unknown_identifiers_neither_explain_nor_count_against():
    with_id = evidence("The ApprovalXyzzy123 event never reaches the waiting workflow.")
    without = evidence("The event never reaches the waiting workflow.")
    assert "approvalxyzzy123" not in with_id.unexplained
    assert with_id.coverage == pytest.approx(without.coverage)
    assert with_id.dapr_language == pytest.approx(without.dapr_language)


def test_a_classification_saves_the_search_and_gives_the_same_score():
    description = "Workflow timers never fire and the scheduler is unreachable in dev."
    classification = classify_ticket(description)
    assert assess_scope(description, classification).score == assess_scope(description).score
    assert classification.scope_score == assess_scope(description).score
    assert classification.in_scope


def test_an_llm_category_other_is_out_of_scope_whatever_the_score():
    description = "The sidecar gets connection refused from the app on port 5000."
    scope = assess_scope(description, SimpleNamespace(category="other", top_score=None))
    assert not scope.in_scope
    assert scope.score > SCOPE_THRESHOLD
    assert scope.reason == "triage chose category other"


def test_the_customer_saying_dapr_is_not_involved_decides():
    scope = assess_scope("Our Cassandra ring drops writes in production; the service writes to "
                         "Cassandra itself, without Dapr.")
    assert not scope.in_scope
    assert scope.reason.startswith("the customer says Dapr is not involved")


def test_a_negation_confined_to_one_part_leaves_the_rest_of_the_ticket_to_decide():
    description = ("The sidecar of our checkout app answers ERR_PUBSUB_NOT_FOUND on every publish. "
                   "A legacy billing job reads the same Kafka topic (no Dapr on that side) and "
                   "works fine.")
    scope = assess_scope(description)
    assert scope.in_scope
    assert scope.reason.startswith("scope score")
    assert any(signal.startswith("Dapr not involved in one part only: 'no Dapr'")
               for signal in scope.signals)


def test_a_qualified_negation_still_decides_when_nothing_else_is_about_dapr():
    # "in that service" qualifies the negation, but no other part of the ticket is about Dapr.
    scope = assess_scope("Our Cassandra ring drops writes in production. The service writes to "
                         "Cassandra itself, no Dapr in that service.")
    assert not scope.in_scope
    assert scope.reason == "the customer says Dapr is not involved ('no Dapr')"


def test_the_rest_of_a_ticket_leaves_out_only_what_carries_the_negation():
    assert without_negating_clauses(
        "The sidecar times out. A cron job (no Dapr on that side) runs fine.") == \
        "The sidecar times out. A cron job runs fine."
    assert without_negating_clauses(
        "The sidecar times out, and the batch job has no Dapr at all. Staging only.") == \
        "The sidecar times out Staging only."
    assert without_negating_clauses("We use Postgres directly, without Dapr.") == ""


def test_a_customers_name_for_a_dapr_concept_is_covered_and_is_runtime_vocabulary():
    # "orchestrations" is the Dapr docs' name for workflows; the article writes only "workflow".
    found = measure_scope("Old orchestrations take up most of our Redis memory; can they be "
                          "deleted automatically?", 20.0, ["workflow-history-growth"])
    assert "orchestrations" not in found.unexplained
    assert found.runtime_word == "orchestrations"


REPO = Path(__file__).parents[2]
CALIBRATION_SETS = [REPO.parent / "shared/eval/dev-tickets.jsonl",
                    REPO.parent / "shared/eval/dev-scope-tickets.jsonl",
                    REPO / "tests/data/scope-calibration-tickets.jsonl",
                    REPO / "tests/data/holdout-tickets.jsonl"]


@pytest.mark.skipif(not all(path.exists() for path in CALIBRATION_SETS),
                    reason="shared/eval development sets not present")
def test_the_threshold_is_the_one_measured_on_the_calibration_sets():
    sweep = calibrate_scope([ticket for path in CALIBRATION_SETS for ticket in load_tickets(path)])
    assert sweep["threshold"] == pytest.approx(SCOPE_THRESHOLD, abs=0.005)
    assert sweep["distribution"]["in_scope"]["min"] >= SCOPE_THRESHOLD
    assert sweep["out_of_scope_caught"] >= 0.85


@pytest.mark.parametrize("description", [
    # The rest reads like a Dapr ticket (a sidecar not injected, mTLS), but Dapr is named only to
    # say it is not there.
    "New pods in our dev namespace come up without the Envoy sidecar after the Istio upgrade, and "
    "calls between injected pods fail with mTLS errors. Dapr isn't installed on this cluster.",
    "Our order workflows are stuck in Running and the activity worker never picks them up. We run "
    "Temporal Cloud with the Java SDK; no Dapr anywhere in this path.",
    # Dapr taken out of the part that fails.
    "Calls from cart to pricing get 503 from Envoy since the mesh upgrade. We removed Dapr from both "
    "namespaces in the spring, they only run the mesh proxy now.",
    # No sidecar where the problem is.
    "Our consumers rebalance every few minutes and lag grows on the orders topic. They are plain Go "
    "services on the Kafka client library, no sidecar anywhere in that path.",
    "The checkout service gets 'too many clients' from Postgres through pgbouncer; there is no sidecar "
    "in the call path, the service talks to the pooler itself.",
])
def test_a_negation_decides_when_the_rest_never_names_dapr(description):
    scope = assess_scope(description)
    assert not scope.in_scope
    assert scope.reason.startswith("the customer says Dapr is not involved")


@pytest.mark.parametrize("description", [
    # A missing sidecar is the Dapr problem itself, not a statement that Dapr is not involved.
    "Pods in our new namespace come up 1/1 with no Dapr sidecar in the pod since the injector upgrade.",
    # Taking out a part of Dapr is a Dapr change.
    "We removed Dapr components for the old Redis store and now the sidecar fails to start with "
    "an error loading the state store.",
])
def test_a_missing_sidecar_or_a_removed_dapr_part_is_still_a_dapr_problem(description):
    scope = assess_scope(description)
    assert not any(s.startswith("Dapr not involved") for s in scope.signals)
    assert not scope.reason.startswith("the customer says Dapr is not involved")


def test_a_subject_line_and_a_quoted_label_are_not_another_product():
    # A subject line is a sentence of its own; a capitalised word after it opens no subject.
    found = evidence("Subject: large uploads rejected\n\nPolicyholders get an error from the sidecar: "
                     "grpc message larger than max.")
    assert found.other_product is None
    # The customer's own label for their app, in quotes or parentheses.
    assert evidence('Our assistant ("Ask Zorblax") fails: the conversation component returns 404.').other_product is None
    assert evidence("Our Zorblax assistant fails: the conversation component returns 404.").other_product == "Zorblax"


def test_a_count_of_machines_opens_the_setup_not_a_subject():
    found = evidence("Lab setup, no Kubernetes: three Zorblax VMs run one service each with dapr run, and "
                     "invocation across subnets fails to resolve the app id.")
    assert found.other_product is None


def test_dapr_said_to_be_healthy_is_dapr_not_involved():
    assessment = assess_scope("Production is down: our Zorblax ingress lost its certificate and serves the default "
                              "backend. The Dapr apps behind it look healthy.")
    assert not assessment.in_scope and "Dapr is not involved" in assessment.reason


def test_a_ticket_the_category_model_reads_as_other_goes_to_a_person(monkeypatch):
    from app.triage import ticket_model

    description = "Messages published to the orders topic never reach the subscriber; the sidecar logs no error."
    assert assess_scope(description).in_scope
    sure_other = ticket_model.TicketModel(["pubsub", "other"], [0.0, 0.0], {"orders": [0.0, 9.0]}, trained_on=1)
    monkeypatch.setattr(ticket_model, "load_model", lambda name: sure_other)
    scope = assess_scope(description)
    other = sure_other.probabilities(description, category_cues(kb_category(description)))["other"]
    assert not scope.in_scope and other >= 0.5
    assert scope.reason.startswith("scope score ") and scope.reason.endswith(
        f"but the category model reads it as other ({other:.0%})")
    assert scope.signals[-1] == f"category model: other {other:.0%}"
    # Not sure enough (below OTHER_PROBABILITY): the score decides.
    unsure = ticket_model.TicketModel(["pubsub", "other"], [0.1, 0.0], {"orders": [0.0, 0.3]}, trained_on=1)
    monkeypatch.setattr(ticket_model, "load_model", lambda name: unsure)
    assert 0.2 < unsure.probabilities(description, category_cues(kb_category(description)))["other"] < 0.5
    assert assess_scope(description).in_scope


def test_a_dapr_problem_the_score_would_send_away_stays_when_the_category_model_is_sure(monkeypatch):
    from app.triage import ticket_model

    description = "Our accountants cannot close the month: the ledger figures stopped arriving since Monday."
    assert not assess_scope(description).in_scope
    sure_dapr = ticket_model.TicketModel(["pubsub", "other"], [0.0, 0.0], {"ledger": [9.0, 0.0]}, trained_on=1)
    monkeypatch.setattr(ticket_model, "load_model", lambda name: sure_dapr)
    scope = assess_scope(description)
    other = sure_dapr.probabilities(description, category_cues(kb_category(description)))["other"]
    assert scope.in_scope and other < 0.2
    assert f"but the category model reads it as a Dapr problem (other {other:.0%})" in scope.reason
    # The customer saying Dapr is not involved still decides.
    assert not assess_scope(description + " Dapr is not involved here.").in_scope
