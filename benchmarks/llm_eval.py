"""The evaluation in LLM mode against the scripted OpenAI-compatible server, over whole sets.

    python -m benchmarks.llm_eval [FILES...]   (default: the shared development sets)

No model is reachable from this machine, so this measures the LLM *path*, not a model's
judgement: for each ticket the scripted model calls the triage agent's two tools, then answers
with the category and priority the offline rules give that ticket. `python -m app.eval` runs
every ticket through the real triage agent, the openai client and the structured-answer parser;
its figures must then equal the offline run's (a difference is a defect of the path: a dropped
answer, a misread category, scope applied differently), and it reports what the path costs:
requests, latency and tokens per ticket. Prints one JSON object per file: the offline figures,
the LLM-mode figures, and the keys on which they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from app.triage.classify import classify_ticket
from tests.support.scripted_llm import ScriptedLLM

REPO = Path(__file__).resolve().parents[1]
SHARED_EVAL = REPO.parent / "shared" / "eval"
DEFAULT_FILES = [SHARED_EVAL / "dev-tickets.jsonl", SHARED_EVAL / "dev-scope-tickets.jsonl"]
MODEL = "scripted-model"
COMPARED = ("article_recall_at_3", "top_article_accuracy", "category_accuracy", "priority_accuracy",
            "out_of_scope_routed_to_person", "in_scope_routed_away", "two_problems_both_cited_at_3")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))}
    return {**env, **extra}


def _eval(path: Path, env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-m", "app.eval", str(path)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"app.eval failed on {path}:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _script(llm: ScriptedLLM, tickets: list[dict]) -> None:
    """Four replies per ticket, in the order app.eval reads them: two tool calls, the agent's
    prose, its structured answer (what the offline rules decide for that ticket)."""
    for ticket in tickets:
        offline = classify_ticket(ticket["description"])
        llm.reply_tool_call("lookup_customer", {"customer_id": ticket.get("customer_id", "CUST001")})
        llm.reply_tool_call("lookup_system_info", {})
        llm.reply_text(f"Category {offline.category}, priority {offline.priority}.")
        llm.reply_text(json.dumps({"category": offline.category, "priority": offline.priority,
                                   "summary": "Scripted triage."}))


def measure(path: Path) -> dict:
    tickets = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    offline = _eval(path, _env(LLM_PROVIDER="offline"))
    llm = ScriptedLLM().start()
    try:
        _script(llm, tickets)
        online = _eval(path, _env(LLM_PROVIDER="openai", OPENAI_BASE_URL=llm.base_url,
                                  OPENAI_API_KEY="scripted-key", LLM_MODEL=MODEL))
        requests = len(llm.requests)
    finally:
        llm.stop()
    return {
        "file": path.name, "tickets": len(tickets),
        "offline": {k: offline.get(k) for k in COMPARED},
        "llm": {k: online.get(k) for k in (*COMPARED, "mode", "model", "llm_errors", "latency_s",
                                            "prompt_tokens", "completion_tokens")},
        "requests_per_ticket": round(requests / len(tickets), 2),
        "differ": [k for k in COMPARED if offline.get(k) != online.get(k)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    for path in parser.parse_args().files:
        print(json.dumps(measure(path)), flush=True)


if __name__ == "__main__":
    main()
