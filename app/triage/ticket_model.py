"""Linear models over a ticket's words, learned from the labelled ticket sets: priority and category.

Each is a multinomial logistic regression over the words and word pairs of a ticket and the cues
the rules read in it (present or not, each worth 1/sqrt(how many the ticket has)), trained by
`python -m app.triage.model_training` on every labelled set the repository holds (the
development sets and the sets written blind since) and shipped as weights (`models/<name>.json`).
Inference is a sum of weights: no numpy, no model server, the same answer on every machine.

Both were chosen over the rules alone by measurement on ticket sets they never saw
(docs/benchmarks.md, "Session 15"); the rules stay, as cues the models weigh and, for priority,
as the answer wherever a ticket meets a rubric definition outright (`app.triage.classify`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MODELS_DIR = Path(__file__).with_name("models")
MODEL_NAMES = ("priority", "category")
_WORD = re.compile(r"[a-z][a-z0-9_']+|\d{3}")  # three digits: status codes, ports (500, 503, 404)
WORDS_SHOWN = 4
# Weighed like any word, but no explanation to an engineer ("of", "is", "the").
_FUNCTION_WORDS = frozenset(
    "a an the of to in on at by for from with about as and or but so if is are was were be been it its "
    "this that these those we our us i my you your they their there here".split())


def weights_file(name: str) -> Path:
    return MODELS_DIR / f"{name}.json"


def features(description: str, cues: frozenset[str] = frozenset()) -> set[str]:
    """The words and adjacent word pairs of a ticket, lower-cased, and the cues the rules read in
    it (for priority `app.triage.classify.rubric_cues`: where, how bad, a workaround, ...)."""
    words = _WORD.findall(description.lower())
    return set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])} | {f"cue:{c}" for c in cues}


def feature_values(found: set[str]) -> dict[str, float]:
    """Each feature is worth 1/sqrt(how many the ticket has): a long ticket weighs no more than a
    short one. (Cues worth more than words were measured worse on the sets written blind.)"""
    scale = 1.0 / math.sqrt(max(1, len(found)))
    return dict.fromkeys(found, scale)


@dataclass(frozen=True)
class Guess:
    label: str
    probability: float
    runner_up: str
    # The ticket's words that weighed most for this label over the runner-up (no function words).
    words: tuple[str, ...]


class TicketModel:
    def __init__(self, classes: list[str], bias: list[float], weights: dict[str, list[float]],
                 trained_on: int):
        self.classes = classes
        self.bias = bias
        self.weights = weights
        self.trained_on = trained_on

    @classmethod
    def load(cls, path: Path) -> TicketModel:
        data = json.loads(path.read_text())
        return cls(data["classes"], data["bias"], data["weights"], data["trained_on"]["tickets"])

    def scores(self, found: set[str]) -> list[float]:
        scores = list(self.bias)
        for feature, value in feature_values(found).items():
            for i, w in enumerate(self.weights.get(feature, ())):
                scores[i] += w * value
        return scores

    def probabilities(self, description: str, cues: frozenset[str] = frozenset()) -> dict[str, float]:
        shares = _softmax(self.scores(features(description, cues)), range(len(self.classes)))
        return {label: shares[i] for i, label in enumerate(self.classes)}

    def predict(self, description: str, cues: frozenset[str] = frozenset(),
                among: frozenset[str] | None = None) -> Guess:
        """The likeliest label, of `among` when given (the probability is then over those)."""
        found = features(description, cues)
        scores = self.scores(found)
        allowed = [i for i, label in enumerate(self.classes) if among is None or label in among]
        shares = _softmax(scores, allowed)
        ranked = sorted(allowed, key=lambda i: -scores[i])
        best, second = ranked[0], ranked[1] if len(ranked) > 1 else ranked[0]
        pull = sorted(((self.weights[f][best] - self.weights[f][second], f) for f in found
                       if f in self.weights and not f.startswith("cue:")
                       and not set(f.split()) <= _FUNCTION_WORDS), reverse=True)
        return Guess(label=self.classes[best], probability=shares[best],
                     runner_up=self.classes[second],
                     words=tuple(f for margin, f in pull[:WORDS_SHOWN] if margin > 0))


def _softmax(scores: list[float], among) -> dict[int, float]:
    """Each index of `among`'s probability, over those indices only."""
    top = max(scores[i] for i in among)
    exp = {i: math.exp(scores[i] - top) for i in among}
    total = sum(exp.values())
    return {i: e / total for i, e in exp.items()}


@lru_cache(maxsize=len(MODEL_NAMES))
def load_model(name: str) -> TicketModel:
    return TicketModel.load(weights_file(name))
