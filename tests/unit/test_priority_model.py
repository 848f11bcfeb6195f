import json

import pytest

from app.triage import priority_training
from app.triage.classify import decide_priority, rubric_cues
from app.triage.priority_model import PriorityModel, feature_values, features, load_priority_model


def test_features_are_words_pairs_and_cues():
    assert features("Prod is DOWN, 503", frozenset({"outage"})) == {
        "prod", "is", "down", "503", "prod is", "is down", "down 503", "cue:outage"}


def test_a_prediction_sums_the_weights_of_the_ticket_features():
    model = PriorityModel(["critical", "high", "medium", "low"], [0.0, 0.0, 0.0, 0.0],
                          {"down": [4.0, 0.0, 0.0, 0.0], "how": [0.0, 0.0, 0.0, 4.0],
                           "staging": [0.0, 0.0, 2.0, 0.0]}, trained_on=3)
    guess = model.predict("everything is down")
    assert guess.priority == "critical"
    assert guess.words == ("down",)  # "everything" and "is" pull to no side; function words are never shown
    assert 0.25 < guess.probability < 1.0
    assert model.predict("how do I").priority == "low"
    # Each feature counts 1/sqrt(n): "how" (4) beats "staging" (2) in the same ticket.
    assert model.predict("how about staging").priority == "low"
    assert model.predict("how about staging").runner_up == "medium"


def test_a_feature_is_worth_the_same_in_every_ticket_of_the_same_length():
    values = feature_values({"a", "b", "c", "cue:outage"})
    assert set(values.values()) == {0.5}


def test_training_gives_the_same_weights_twice(monkeypatch):
    tickets = [{"set": "s", "description": d, "cues": rubric_cues(d), "priority": p} for d, p in [
        ("production is down for every customer", "critical"), ("production is down again", "critical"),
        ("how do I configure tracing", "low"), ("how do I configure logging", "low"),
        ("staging calls fail with 500", "medium"), ("staging calls fail with 404", "medium"),
        ("production calls partly fail", "high"), ("production calls partly fail at times", "high")]]
    monkeypatch.setattr(priority_training, "MIN_COUNT", 2)
    first, second = priority_training.train(tickets), priority_training.train(tickets)
    assert first == second
    model = PriorityModel(first["classes"], first["bias"], first["weights"], first["trained_on"]["tickets"])
    assert [model.predict(t["description"], t["cues"]).priority for t in tickets] == [t["priority"] for t in tickets]


def test_the_shipped_weights_were_trained_on_every_labelled_set_but_the_one_kept_apart():
    """A set added to tests/data without retraining (python -m app.triage.priority_training)
    fails here; the set kept to measure the model is never among the training sets."""
    shipped = json.loads(priority_training.WEIGHTS_FILE.read_text())
    sets = priority_training.labelled_sets()
    if not any(p.name == "dev-tickets.jsonl" for p in sets):
        pytest.skip("../shared/eval is not present")
    assert shipped["trained_on"]["sets"] == sorted(p.name for p in sets)
    assert shipped["trained_on"]["tickets"] == len(priority_training.load_tickets(sets))
    assert not set(priority_training.NEVER_TRAINED) & set(shipped["trained_on"]["sets"])
    assert all((priority_training.REPO_SETS / name).exists() for name in priority_training.NEVER_TRAINED)


@pytest.mark.parametrize(("description", "priority"), [
    ("Our production checkout is down: every call through the sidecar fails since 09:00.", "critical"),
    ("The sidecar log prints our database password in clear text, secrets are exposed.", "high"),
    ("Injection fails in the new cluster and this blocks our release planned for Friday.", "high"),
    ("Subscriptions fail in production, we restart the pods manually as a workaround.", "medium"),
    ("How do I enable JSON logs for the sidecar?", "low"),
])
def test_a_rubric_definition_met_outright_is_settled_by_the_rules(description, priority):
    decided, signals = decide_priority(description)
    assert decided == priority
    assert signals[-1] == f"priority {priority}: the rubric's definition, read by the rules"


def test_a_failure_whose_severity_is_a_judgement_is_weighed_by_the_model():
    # Blind set posthoc35 (PH35-019): the rules read it as a functional problem outside
    # production (medium): "PRD" and "nothing arrives" are a production outage.
    description = ("pubsub dead in PRD since 09:40. publisher was changed this morning to send to topic "
                   "'orders-v2' instead of 'orders', publish calls return 204 fine, fulfillment-svc gets "
                   "zero messages. every order since then is sitting unprocessed.")
    decided, signals = decide_priority(description)
    model_guess = load_priority_model().predict(description, rubric_cues(description))
    assert decided == model_guess.priority == "critical"
    assert signals[0].startswith(f"priority {decided}: the priority model, ")
    assert "labelled tickets); words: '" in signals[0]
    assert signals[-1] == "the rules alone: medium"
