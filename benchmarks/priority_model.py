"""A learned priority against the rules, leave one set out (an experiment; the service ships the rules).

    python -m benchmarks.priority_model [--threshold 0.6] [--blind FILE.jsonl ...]

Issue 14 asks for priority on unseen tickets from rules that follow the rubric "or a small model
that installs from PyPI and runs offline, chosen by measurement". This is the measurement: a
softmax regression (numpy, L2) over what the rules read (their priority, the environment, each
cue family: outage, data loss, failure, workaround, partial, exposure, release blocked, scope)
and the ticket's words, trained on every labelled set but one and scored on that one, for each
set in turn (shared/eval and tests/data). Three predictors per held-out set: the rules, the model,
and a hybrid that takes the model's priority only where it disagrees with the rules with
probability >= --threshold. `--blind` files are scored by models trained on every labelled set
and never trained on. Prints one line per set and the totals.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.triage import classify as rules  # noqa: E402

PRIORITIES = ("critical", "high", "medium", "low")
WORD_WEIGHT = 0.3  # a word counts less than a rule's cue
MIN_DOCUMENTS = 3  # a feature seen in fewer training tickets is dropped
L2, EPOCHS, LEARNING_RATE = 1.0, 300, 0.5


def labelled_sets() -> list[Path]:
    shared = REPO.parent / "shared" / "eval"
    return [shared / "dev-tickets.jsonl", shared / "dev-scope-tickets.jsonl",
            *sorted((REPO / "tests" / "data").glob("*.jsonl"))]


def features(description: str) -> tuple[dict[str, float], str]:
    """What the rules read, and their priority."""
    classification = rules.classify_ticket(description)
    text = " ".join(description.split())
    statements = rules._statements("\n".join(" ".join(p.split()) for p in rules._PARAGRAPH_BREAK.split(description)))
    environment = rules._environment(text)[0]
    found: dict[str, float] = {f"rule={classification.priority}": 1.0, f"environment={environment}": 1.0,
                               f"in_scope={classification.in_scope}": 1.0,
                               f"environment={environment}&rule={classification.priority}": 1.0}
    for name, cues, source in (("outage", rules._OUTAGE, statements), ("data_loss", rules._DATA_LOSS, statements),
                               ("failure", rules._FAILURE, statements), ("workaround", rules._WORKAROUND, statements),
                               ("no_impact", rules._NO_IMPACT_YET, text), ("partial", rules._PARTIAL, statements),
                               ("exposure", rules._SECURITY_EXPOSURE, statements),
                               ("release_blocked", rules._RELEASE_BLOCKED, statements)):
        if rules._first(cues, source):
            found[name] = 1.0
    for word in set(re.findall(r"[a-z][a-z']+", description.lower())):
        found[f"word:{word}"] = WORD_WEIGHT
    return found, classification.priority


class SoftmaxModel:
    def __init__(self, rows: list[tuple[dict[str, float], str]]):
        counts: dict[str, int] = {}
        for found, _ in rows:
            for name in found:
                counts[name] = counts.get(name, 0) + 1
        self.vocabulary = {name: i for i, name in enumerate(sorted(n for n, c in counts.items() if c >= MIN_DOCUMENTS))}
        x = np.stack([self._vector(found) for found, _ in rows])
        y = np.zeros((len(rows), len(PRIORITIES)))
        for i, (_, label) in enumerate(rows):
            y[i, PRIORITIES.index(label)] = 1.0
        self.weights, self.bias = np.zeros((len(self.vocabulary), len(PRIORITIES))), np.zeros(len(PRIORITIES))
        for _ in range(EPOCHS):
            gradient = (self._softmax(x) - y) / len(rows)
            self.weights -= LEARNING_RATE * (x.T @ gradient + L2 * self.weights / len(rows))
            self.bias -= LEARNING_RATE * gradient.sum(0)

    def _vector(self, found: dict[str, float]) -> np.ndarray:
        vector = np.zeros(len(self.vocabulary))
        for name, value in found.items():
            if name in self.vocabulary:
                vector[self.vocabulary[name]] = value
        return vector

    def _softmax(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.weights + self.bias
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def predict(self, found: dict[str, float]) -> tuple[str, float]:
        p = self._softmax(self._vector(found)[None, :])[0]
        return PRIORITIES[int(p.argmax())], float(p.max())


def load(path: Path) -> list[tuple[dict[str, float], str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            ticket = json.loads(line)
            found, rule = features(ticket["description"])
            rows.append((found, rule, ticket["expected_priority"]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--blind", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    labelled = {path: load(path) for path in labelled_sets()}
    blind = {path: load(path) for path in args.blind}
    totals = {"tickets": 0, "rules": 0, "model": 0, "hybrid": 0}
    for held_out, rows in [*labelled.items(), *blind.items()]:
        training = [(found, label) for path, data in labelled.items() if path != held_out for found, _, label in data]
        model = SoftmaxModel(training)
        scores = {"rules": 0, "model": 0, "hybrid": 0}
        for found, rule, label in rows:
            learned, confidence = model.predict(found)
            hybrid = learned if learned != rule and confidence >= args.threshold else rule
            scores["rules"] += rule == label
            scores["model"] += learned == label
            scores["hybrid"] += hybrid == label
        kind = "blind" if held_out in blind else "held out"
        print(json.dumps({"set": held_out.name, "kind": kind, "tickets": len(rows), **scores}))
        if held_out not in blind:
            totals["tickets"] += len(rows)
            for name, score in scores.items():
                totals[name] += score
    print(json.dumps({"total_held_out": totals, "threshold": args.threshold}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
