import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
DEV_TICKETS = REPO.parent / "shared/eval/dev-tickets.jsonl"
HOLDOUT_TICKETS = REPO / "tests/data/holdout-tickets.jsonl"


def run_eval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.eval", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def last_line_figures(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not DEV_TICKETS.exists(), reason="shared/eval/dev-tickets.jsonl not present")
def test_dev_set_meets_the_targets():
    figures = last_line_figures(run_eval(DEV_TICKETS))
    assert figures["tickets"] == 40
    assert figures["mode"] == "offline"
    assert figures["article_recall_at_3"] >= 0.95
    assert figures["category_accuracy"] >= 0.90
    assert figures["priority_accuracy"] >= 0.85


def test_holdout_set_meets_the_targets():
    figures = last_line_figures(run_eval(HOLDOUT_TICKETS))
    assert figures["tickets"] == sum(1 for line in HOLDOUT_TICKETS.open() if line.strip())
    assert figures["article_recall_at_3"] >= 0.95
    assert figures["category_accuracy"] >= 0.90
    assert figures["priority_accuracy"] >= 0.85


def test_misses_go_to_stderr_and_figures_count_them(tmp_path):
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("\n".join(json.dumps(t) for t in [
        {"id": "A", "description": "x509: certificate has expired on every call in staging",
         "expected_articles": ["mtls-cert-expiry"], "expected_category": "security",
         "expected_priority": "medium"},
        {"id": "B", "description": "How do I turn on JSON logs for daprd?",
         "expected_articles": ["outbox-transactional"], "expected_category": "pubsub",
         "expected_priority": "low"},
    ]) + "\n\n")
    result = run_eval(tickets)
    assert last_line_figures(result) == {"tickets": 2, "article_recall_at_3": 0.5,
                                         "category_accuracy": 0.5, "priority_accuracy": 1.0,
                                         "mode": "offline"}
    assert "miss B:" in result.stderr
    assert "miss A:" not in result.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    result = run_eval(tmp_path / "nope.jsonl")
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read")
    assert result.stdout == ""


@pytest.mark.parametrize(("content", "message"), [
    ('{"description": "ok"}\n{not json}\n', ":2: not valid JSON"),
    ('["a list"]\n', ":1: expected an object with a 'description' string"),
    ('{"description": "x", "expected_articles": "slug"}\n', ":1: 'expected_articles' must be a list"),
    ("\n\n", ": no tickets"),
])
def test_malformed_input_is_a_clear_error(tmp_path, content, message):
    tickets = tmp_path / "bad.jsonl"
    tickets.write_text(content)
    result = run_eval(tickets)
    assert result.returncode == 2
    assert message in result.stderr


def test_eval_does_not_import_dapr():
    check = ("import sys, app.eval; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dapr', 'dapr_agents')))")
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
