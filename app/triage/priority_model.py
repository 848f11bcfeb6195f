"""Priority from the ticket's words: a linear model learned from the labelled ticket sets.

Multinomial logistic regression over the words and word pairs of a ticket and the rubric's cues
the rules read in it (present or not, scaled by the ticket's length), trained by `python -m app.triage.priority_training` on every
labelled set the repository holds (the development sets and the sets written blind since), and
shipped as weights (`priority_weights.json`). Inference is a sum of weights: no numpy, no model
server, the same answer on every machine.

Chosen over the rubric rules of `app.triage.classify` by measurement (docs/benchmarks.md,
"Session 15"): on sets it never saw, the rules were right on about three tickets in four (each
set measured before the rules were tuned on it), the model on nearly nine in ten. The rules
stay: they order the problems of a ticket by impact, and what they read is shown beside the
model's words, so an engineer sees both.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app.domain.triage import Priority

WEIGHTS_FILE = Path(__file__).with_name("priority_weights.json")
_WORD = re.compile(r"[a-z][a-z0-9_']+|\d{3}")  # three digits: status codes, ports (500, 503, 404)
WORDS_SHOWN = 4
# Weighed like any word, but no explanation to an engineer ("of", "is", "the").
_FUNCTION_WORDS = frozenset(
    "a an the of to in on at by for from with about as and or but so if is are was were be been it its "
    "this that these those we our us i my you your they their there here".split())


def features(description: str, cues: frozenset[str] = frozenset()) -> set[str]:
    """The words and adjacent word pairs of a ticket, lower-cased, and the rubric's cues the rules
    read in it (`app.triage.classify.rubric_cues`: where, how bad, a workaround, ...)."""
    words = _WORD.findall(description.lower())
    return set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])} | {f"cue:{c}" for c in cues}


def feature_values(found: set[str]) -> dict[str, float]:
    """Each feature is worth 1/sqrt(how many the ticket has): a long ticket weighs no more than a
    short one. (Cues worth more than words were measured worse on the sets written blind.)"""
    scale = 1.0 / math.sqrt(max(1, len(found)))
    return dict.fromkeys(found, scale)


@dataclass(frozen=True)
class PriorityGuess:
    priority: Priority
    probability: float
    # The ticket's words that weighed most for this priority over the runner-up (no function words).
    words: tuple[str, ...]
    runner_up: Priority


class PriorityModel:
    def __init__(self, classes: list[str], bias: list[float], weights: dict[str, list[float]],
                 trained_on: int):
        self.classes = classes
        self.bias = bias
        self.weights = weights
        self.trained_on = trained_on

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> PriorityModel:
        data = json.loads(path.read_text())
        return cls(data["classes"], data["bias"], data["weights"], data["trained_on"]["tickets"])

    def predict(self, description: str, cues: frozenset[str] = frozenset()) -> PriorityGuess:
        found = features(description, cues)
        present = [f for f in found if f in self.weights]
        scores = list(self.bias)
        for feature, value in feature_values(found).items():
            for i, w in enumerate(self.weights.get(feature, ())):
                scores[i] += w * value
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
        best, second = ranked[0], ranked[1]
        pull = sorted(((self.weights[f][best] - self.weights[f][second], f) for f in present
                       if not f.startswith("cue:") and not set(f.split()) <= _FUNCTION_WORDS), reverse=True)
        words = tuple(f for margin, f in pull[:WORDS_SHOWN] if margin > 0)
        return PriorityGuess(priority=self.classes[best], probability=exp[best] / sum(exp), words=words,
                             runner_up=self.classes[second])


@lru_cache(maxsize=1)
def load_priority_model() -> PriorityModel:
    return PriorityModel.load()
