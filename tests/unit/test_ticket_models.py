import json

import pytest

from app.triage import model_training
from app.triage.classify import classify_ticket, decide_category, decide_priority, kb_category, rubric_cues
from app.triage.ticket_model import MODEL_NAMES, TicketModel, feature_values, features, load_model, weights_file


def test_features_are_words_pairs_and_cues():
    assert features("Prod is DOWN, 503", frozenset({"outage"})) == {
        "prod", "is", "down", "503", "prod is", "is down", "down 503", "cue:outage"}


def test_a_prediction_sums_the_weights_of_the_ticket_features():
    model = TicketModel(["critical", "high", "medium", "low"], [0.0, 0.0, 0.0, 0.0],
                          {"down": [4.0, 0.0, 0.0, 0.0], "how": [0.0, 0.0, 0.0, 4.0],
                           "staging": [0.0, 0.0, 2.0, 0.0]}, trained_on=3)
    guess = model.predict("everything is down")
    assert guess.label == "critical"
    assert guess.words == ("down",)  # "everything" and "is" pull to no side; function words are never shown
    assert 0.25 < guess.probability < 1.0
    assert model.predict("how do I").label == "low"
    # Each feature counts 1/sqrt(n): "how" (4) beats "staging" (2) in the same ticket.
    assert model.predict("how about staging").label == "low"
    assert model.predict("how about staging").runner_up == "medium"
    # Among some labels only: the probability is over those.
    among = model.predict("how about staging", among=frozenset({"critical", "high", "medium"}))
    assert among.label == "medium" and among.probability > 0.5


def test_a_feature_is_worth_the_same_in_every_ticket_of_the_same_length():
    values = feature_values({"a", "b", "c", "cue:outage"})
    assert set(values.values()) == {0.5}


def test_training_gives_the_same_weights_twice(monkeypatch):
    tickets = [{"set": "s", "description": d, "cues": rubric_cues(d), "label": p} for d, p in [
        ("production is down for every customer", "critical"), ("production is down again", "critical"),
        ("how do I configure tracing", "low"), ("how do I configure logging", "low"),
        ("staging calls fail with 500", "medium"), ("staging calls fail with 404", "medium"),
        ("production calls partly fail", "high"), ("production calls partly fail at times", "high")]]
    monkeypatch.setattr(model_training, "MIN_COUNT", 2)
    classes = model_training.TARGETS["priority"].classes
    first, second = model_training.train(tickets, classes), model_training.train(tickets, classes)
    assert first == second
    model = model_training.as_model(first)
    assert [model.predict(t["description"], t["cues"]).label for t in tickets] == [t["label"] for t in tickets]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_shipped_weights_were_trained_on_every_labelled_set_but_the_one_kept_apart(name):
    """A set added to tests/data without retraining (python -m app.triage.model_training) fails
    here; the set kept to measure the models is never among the training sets."""
    shipped = json.loads(weights_file(name).read_text())
    sets = model_training.labelled_sets()
    if not any(p.name == "dev-tickets.jsonl" for p in sets):
        pytest.skip("../shared/eval is not present")
    assert shipped["trained_on"]["sets"] == sorted(p.name for p in sets)
    assert shipped["trained_on"]["tickets"] == sum(
        1 for p in sets for line in p.read_text().splitlines() if line.strip())
    assert shipped["classes"] == model_training.TARGETS[name].classes
    assert not set(model_training.NEVER_TRAINED) & set(shipped["trained_on"]["sets"])
    assert all((model_training.REPO_SETS / n).exists() for n in model_training.NEVER_TRAINED)


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
    # Blind set posthoc35 (PH35-019): the rules read production ("PRD") partly failing (high);
    # "zero messages" and "every order ... sitting unprocessed" are a production outage.
    description = ("pubsub dead in PRD since 09:40. publisher was changed this morning to send to topic "
                   "'orders-v2' instead of 'orders', publish calls return 204 fine, fulfillment-svc gets "
                   "zero messages. every order since then is sitting unprocessed.")
    decided, signals = decide_priority(description)
    model_guess = load_model("priority").predict(description, rubric_cues(description))
    assert decided == model_guess.label == "critical"
    assert signals[0].startswith(f"priority {decided}: the priority model, ")
    assert "labelled tickets); words: '" in signals[0]
    assert signals[-1] == "the rules alone: high"


def test_the_category_is_the_best_article_s_when_the_model_agrees():
    description = "Our state store component cannot connect to Redis: dial tcp 10.0.0.5:6379: i/o timeout."
    kb = kb_category(description)
    category, signal = decide_category(description, kb, f"category {kb}: redis")
    assert category == kb == "state"
    assert signal == "category state: redis"


def test_a_definition_read_by_the_rules_stands_unless_the_model_is_sure_of_another_priority(monkeypatch):
    import app.triage.classify as classify

    description = "dev: tryLock on our lock store always returns success:false on a fresh resource id"
    assert not {"failure", "outage", "data_loss"} & rubric_cues(description)  # the rules read no failure

    def model_leaning(medium: float):
        return TicketModel(["critical", "high", "medium", "low"], [0.0, 0.0, 0.0, 0.0],
                           {"returns": [0.0, 0.0, medium, 0.0]}, trained_on=4)

    monkeypatch.setattr(classify, "load_model", lambda name: model_leaning(12.0))
    decided, signals = decide_priority(description)
    assert decided == "medium"
    assert signals[0].startswith("priority medium: the priority model, ")
    assert signals[-1] == "the rules alone: low, by the rubric's definition they read"
    # Below SURE_OF_ANOTHER_PRIORITY the rules' reading stands.
    monkeypatch.setattr(classify, "load_model", lambda name: model_leaning(1.0))
    decided, signals = decide_priority(description)
    assert decided == "low"
    assert signals[-1] == "priority low: the rubric's definition, read by the rules"


def test_a_category_the_model_weighs_otherwise_says_both(monkeypatch):
    import app.triage.classify as classify

    model = TicketModel(["state", "pubsub", "other"], [0.0, 0.0, 5.0],
                        {"topic": [0.0, 9.0, 0.0], "cue:kb_category=state": [1.0, 0.0, 0.0]}, trained_on=2)
    monkeypatch.setattr(classify, "load_model", lambda name: model)
    category, signal = decide_category("messages on the topic vanish", "state", "category state: vanish")
    # "other" is never the model's answer: scope decides that.
    assert category == "pubsub"
    assert signal.startswith("category pubsub: the category model, ")
    assert "words: 'topic'" in signal and signal.endswith("the best article alone: state: vanish")


def test_an_out_of_scope_ticket_stays_other_whatever_the_category_model_says():
    result = classify_ticket("Please send us a corrected invoice for March; the PO number is missing.")
    assert not result.in_scope and result.category == "other"
