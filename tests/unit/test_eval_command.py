import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scripted_llm import ScriptedLLM

REPO = Path(__file__).parents[2]
DEV_TICKETS = REPO.parent / "shared/eval/dev-tickets.jsonl"
DEV_SCOPE_TICKETS = REPO.parent / "shared/eval/dev-scope-tickets.jsonl"
HOLDOUT_TICKETS = REPO / "tests/data/holdout-tickets.jsonl"
# Written after the scope and triage change and never tuned on: the figures they give are the
# honest ones; the floors below are what was measured, as regression guards.
POSTHOC_TICKETS = REPO / "tests/data/posthoc-tickets.jsonl"
POSTHOC_SCOPE_TICKETS = REPO / "tests/data/posthoc-scope-tickets.jsonl"


def offline_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))}
    return {**env, "LLM_PROVIDER": "offline", **extra}


def run_eval(path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.eval", str(path), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env=env or offline_env())


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
    figures = last_line_figures(result)
    assert {key: figures[key] for key in ("tickets", "article_recall_at_3", "category_accuracy",
                                          "priority_accuracy", "mode")} == {
        "tickets": 2, "article_recall_at_3": 0.5, "category_accuracy": 0.5,
        "priority_accuracy": 1.0, "mode": "offline"}
    # No ticket is out of scope or has two problems: those figures have nothing to judge.
    assert figures["out_of_scope_routed_to_person"] is None
    assert figures["in_scope_routed_away"] == 0.0
    assert figures["two_problems_both_cited_at_3"] is None
    assert sum(band["tickets"] for band in figures["calibration"]) == 2
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


@pytest.mark.skipif(not DEV_SCOPE_TICKETS.exists(), reason="shared/eval/dev-scope-tickets.jsonl not present")
def test_dev_scope_set_routes_and_answers_both_problems():
    figures = last_line_figures(run_eval(DEV_SCOPE_TICKETS))
    assert figures["tickets"] == 10
    # 6 of 6 measured; the target is 0.9.
    assert figures["out_of_scope_routed_to_person"] >= 0.9
    assert figures["in_scope_routed_away"] == 0.0
    assert figures["two_problems_both_cited_at_3"] == 1.0


def test_posthoc_sets_figures_hold():
    figures = last_line_figures(run_eval(POSTHOC_TICKETS))
    assert figures["tickets"] >= 20
    assert figures["article_recall_at_3"] >= 0.95
    assert figures["category_accuracy"] >= 0.90
    assert figures["priority_accuracy"] >= 0.85
    scope = last_line_figures(run_eval(POSTHOC_SCOPE_TICKETS))
    assert scope["in_scope_routed_away"] <= 0.05
    assert scope["out_of_scope_routed_to_person"] >= 0.9
    assert scope["two_problems_both_cited_at_3"] >= 0.9
    # Written after the scope change and never tuned on: 7 of 9 measured (target 0.9, not met).
    later = last_line_figures(run_eval(POSTHOC_SCOPE_TICKETS.with_name("posthoc2-scope-tickets.jsonl")))
    assert later["in_scope_routed_away"] <= 0.05
    assert later["out_of_scope_routed_to_person"] >= 0.75
    # 40 tickets written blind (from the rubric and topic list only) after the two-problem split
    # by additive markers. Measured blind: 13 of 14 out of scope routed, 2 of 26 in scope routed
    # away, 9 of 10 two-problem tickets with both cited. Its two misses then led to the confined
    # negation and the Dapr-docs synonyms (no longer blind): 0 of 26 routed away, 10 of 10 cited.
    blind = last_line_figures(run_eval(POSTHOC_SCOPE_TICKETS.with_name("posthoc5-scope-tickets.jsonl")))
    assert blind["tickets"] == 40
    assert blind["out_of_scope_routed_to_person"] >= 0.9
    assert blind["in_scope_routed_away"] == 0.0
    assert blind["two_problems_both_cited_at_3"] == 1.0
    # 40 more written blind after that change (harder: other products named in Dapr tickets, two
    # problems without a connective), never tuned on. Measured: 12 of 14 out of scope routed,
    # 2 of 26 in scope routed away, 7 of 10 with both problems cited: none of the targets met.
    # Its misses then led to the sentence-level split (a sentence clearly matching an article of
    # another category) and the opening-phrase fixes of the subject signal (no longer blind):
    # 13 of 14 routed to a person, 0 of 26 routed away, 10 of 10 cited.
    later_blind = last_line_figures(run_eval(POSTHOC_SCOPE_TICKETS.with_name("posthoc6-scope-tickets.jsonl")))
    assert later_blind["tickets"] == 40
    assert later_blind["out_of_scope_routed_to_person"] >= 0.9
    assert later_blind["in_scope_routed_away"] == 0.0
    assert later_blind["two_problems_both_cited_at_3"] == 1.0
    # A third set of 40 written blind after the change that followed posthoc5 (7 of its 10
    # two-problem tickets with no connective), measured before and after the change that
    # followed posthoc6: the same both times. 12 of 14 out of scope routed (target 0.9, not
    # met), 1 of 26 in scope routed away, 9 of 10 with both problems cited.
    third_blind = last_line_figures(run_eval(POSTHOC_SCOPE_TICKETS.with_name("posthoc7-scope-tickets.jsonl")))
    assert third_blind["tickets"] == 40
    assert third_blind["out_of_scope_routed_to_person"] >= 0.85
    assert third_blind["in_scope_routed_away"] <= 0.04
    assert third_blind["two_problems_both_cited_at_3"] >= 0.9
    # A fourth set of 40 written blind, measured before and after the priority change that read
    # failures reported before a question, denied failures, quantified outages and out-of-scope
    # requests: priority 0.775 -> 0.825 (in scope 20 -> 23 of 26: 0.769 -> 0.885); out of scope routed 9 of 14
    # (0.643) both times, well below the target: it names other products in the middle of the
    # ticket and Dapr features no article covers.
    fourth_blind = last_line_figures(run_eval(POSTHOC_SCOPE_TICKETS.with_name("posthoc8-scope-tickets.jsonl")))
    assert fourth_blind["tickets"] == 40
    assert fourth_blind["priority_accuracy_in_scope"] >= 0.88
    assert fourth_blind["in_scope_routed_away"] == 0.0
    assert fourth_blind["two_problems_both_cited_at_3"] == 1.0
    assert fourth_blind["out_of_scope_routed_to_person"] >= 0.85
    # After posthoc8's out-of-scope misses led to the negation rule (a negation decides unless
    # the rest still names Dapr; no longer blind): 12 of 14 routed. A fifth set of 40, written
    # blind after the priority change and measured before and after both changes: priority
    # 0.725 -> 0.775 (in scope 20 of 26 both times), out of scope routed 6 of 14 (0.43) both
    # times: most of its out-of-scope tickets never say Dapr and describe Kafka, Istio, Linkerd,
    # cert-manager or Temporal in words the articles use. Floors at what was measured.
    fifth_blind = last_line_figures(run_eval(POSTHOC_SCOPE_TICKETS.with_name("posthoc9-scope-tickets.jsonl")))
    assert fifth_blind["tickets"] == 40
    assert fifth_blind["priority_accuracy"] >= 0.9  # after the second priority change (tuned on)
    assert fifth_blind["in_scope_routed_away"] == 0.0
    assert fifth_blind["out_of_scope_routed_to_person"] >= 0.42
    assert fifth_blind["two_problems_both_cited_at_3"] >= 0.8
    # posthoc10 (40) and posthoc11 (40, priority in many wordings) were written blind after
    # those two changes. posthoc10 measured before / after them: priority 0.75 -> 0.775 (in scope
    # 20 of 26 both), out of scope routed 0.5 -> 0.571, routed away 1 of 26 both, category 0.75 ->
    # 0.80. posthoc11, before / after them / after the second priority change (production said
    # as live, customer-facing; chat-style negations; "no" only where something expected is
    # missing; a count's "each"; a partial failure is degraded; a need is a request): priority
    # 0.775 / 0.825 / 0.875, in scope 22 / 23 / 25 of 30; out of scope routed 0.7 throughout.
    # Since tuned on (the second change read posthoc9's and posthoc10's misses; a production
    # expiry with nothing broken then went back to low, as three blind writers labelled it).
    # Session 9's rules (not in production yet said any way; every request failing with the
    # quantifier after the failure; nothing moves or fires; a job that restarts on a schedule
    # and no customer-visible errors as workarounds) came from posthoc11's four misses: 1.0 since.
    # posthoc12 (40) was written blind while they were made and measured before / after them:
    # priority 0.70 / 0.725, in scope 19 / 20 of 28; out of scope routed 11 of 12 (0.917) both;
    # in scope routed away 2 of 28 (0.071, target 0.05 not met); both cited 3 of 4.
    # posthoc13 (40) was written blind in session 10, after every change above, and measured
    # before anything was tuned on it: priority 0.85 (in scope 27 of 32), category 0.90, out of
    # scope routed 6 of 8 (0.75), in scope routed away 1 of 32 (0.031), both cited 6 of 6. Its
    # priority misses then led to five rules (a declared SEV1 and a public site that is down say
    # production; "temporarily" is a workaround only with a mitigating action; "X is back" after
    # a step of theirs is one; errors the customer says it is not seeing are no failure; a blank
    # line ends a sentence): priority 0.975 on it since, posthoc5 0.85 -> 0.875, no other set moved.
    # posthoc14 (40, written blind after those rules, in many styles; never tuned on), before /
    # after them: priority 0.75 / 0.775 (in scope 25 / 26 of 33), category 0.85, out of scope
    # routed 4 of 7 (0.571), in scope routed away 2 of 33 (0.061), both cited 4 of 5.
    # posthoc15 (40) was written blind in session 11 and measured before its rules (production said
    # by the customers it serves: customer traffic, visitors; nobody able to do the thing; a
    # clause opening with "because" gives the impact of the problem before it), which came from
    # posthoc14's misses (0.775 -> 0.90 on it since, in scope 0.79 -> 0.94): posthoc15 priority
    # 0.725 (in scope 24 of 31) before and after, category 0.875, out of scope routed 7 of 9,
    # in scope routed away 1 of 31, both cited 5 of 5. Never tuned on. Then "Dapr not involved"
    # said as Dapr taken out ("we removed Dapr from them") or no sidecar in the path: out of scope
    # routed posthoc10 0.571 -> 0.643, posthoc11 0.7 -> 0.8, posthoc14 0.571 -> 0.714, no ticket
    # routed away anywhere; posthoc15 unchanged.
    # posthoc16 (40) was written blind in session 12, after all of the above, and measured before
    # anything was changed for it: priority 0.825 (in scope 25 of 30), category 0.85, out of
    # scope routed 8 of 10, in scope routed away 2 of 30 (0.067), both cited 1 of 4 (the two-
    # problem retrieval holds on the sets it was made on, not on this one), recall@3 0.90.
    # Then more ways of saying a second problem starts ("while we're at it", "on another note",
    # "one more thing", "the bigger problem: ..."), equal priorities ordered by what the customer
    # calls the main problem, a weak marked clause read with the sentences after it, all made from
    # posthoc17's misses (24 two-problem tickets written for it: both cited 0.875 -> 0.958):
    # posthoc16 both cited 1 -> 2 of 4, never looked at; posthoc9 and posthoc10 0.8 -> 0.9.
    # Session 13: posthoc18 (40, written blind with impact said through business consequences
    # rather than "production") measured before any change: priority 0.625 (in scope 19 of 32),
    # category 0.80, out of scope routed 7 of 8, routed away 3 of 32, both cited 4 of 4. Its misses
    # led to: where no environment is named, the business being hurt (urgent, losing money, call
    # us now) says production; a share failing or the rest still working is a degradation; a
    # step of theirs that restored service is a workaround; a frozen release is blocked; a secret
    # an app "has no business reading" is an exposure; a subject line and a quoted label open no
    # other product (posthoc18 0.875, routed away 1 of 32). posthoc19 (40, blind) measured before /
    # after those: priority 0.725 / 0.775, then tuned on (every ... 5xx, nothing ... runs, zero X
    # since, "PRODUCTION DOWN", down by a percentage is partial, "we only use Dapr for" confines,
    # a role such as "consumer" qualifies the customer's app): 0.925, out of scope routed 8 of 8.
    # posthoc20 (40, blind, never tuned on) before / after all of session 13's rules: priority
    # 0.80 / 0.875 (in scope 27 / 30 of 32), category 0.90, out of scope routed 8 of 8, routed
    # away 1 of 32 (0.031), both cited 2 of 4. Then numbered items of a ticket that announces
    # several problems ("Two things. 1) ... 2) ...") start one each: both cited posthoc16 2 -> 3
    # of 4, posthoc19 3 -> 4 of 4; posthoc20 unchanged. posthoc24 (40, written blind at the end
    # of session 13, never tuned on), session start / end: priority 0.725 / 0.80 (in scope 21 /
    # 24 of 32), category 0.775 / 0.825, out of scope routed 7 of 8 both, routed away 2 / 1 of 32,
    # both cited 3 / 4 of 4, recall@3 0.94 / 0.97. Then tuned on: what follows a request after a
    # comma is reported; a condition closed by a comma and a warning heard are no symptom; "every
    # now and then" is no outage; "under control" is a workaround; "error 500 to every customer",
    # "zero traffic is being served", "takes the entire gateway down" are outages; "keeps printing"
    # is a failure; a count of machines opens the setup, not a subject; "requests never reach our
    # Dapr pods" says Dapr is not involved; a sentence telling what the customer runs or builds is
    # no problem (priority 1.0 on it since). posthoc25 (40, blind, never tuned on), session start /
    # end: priority 0.825 / 0.90 (in scope 27 / 30 of 32), category 0.975 / 0.95, out of scope
    # routed 7 of 8, routed away 0 of 32, both cited 3 of 4. Then tuned on (a store at 85% memory
    # is a failure; a cleanup script and a stopgap that holds are workarounds; a secret posted
    # where it should not be is an exposure; Dapr said to be healthy is Dapr not involved): 0.95.
    # posthoc26 (40, blind, never tuned on), session start / end: priority 0.825 / 0.85 (in scope
    # 26 / 27 of 32), category 0.95, out of scope routed 8 of 8, routed away 0, both cited 4 of 4.
    # Then tuned on (a pen test's finding is an exposure; "none of our services are serving", every
    # pod crashlooping; "everything else in the helpdesk works" is partial; a hypothetical "if ...
    # we'd" reports nothing): 0.95. posthoc27 (40, blind, never tuned on), session start / end:
    # priority 0.925 / 0.95 (in scope 31 / 32 of 32), category 0.925 / 0.95, out of scope routed 8
    # of 8, routed away 0, both cited 2 of 4 both times. posthoc28 (40, written blind at the start
    # of session 14 and measured before any change): priority 0.825 (in scope 26 of 32), category
    # 0.925, out of scope routed 7 of 8, routed away 2 of 32, both cited 4 of 4. Then tuned on: a
    # status code is not a quantity ("400 GB"); "if ... we end up" is hypothetical; trying to
    # mitigate is no workaround; "is offline" is down; "hasn't received a single one", "nothing is
    # consuming" are outages; a release that went out is production; "need someone on this right
    # now" is urgent; dropped transactions are lost data; a sentence telling what the customer
    # changed ("We moved all workloads ...") is the setup: priority 0.95 (in scope 30 of 32).
    # posthoc30 (40, written blind during session 14), measured blind at the session's start and
    # after the rules above: priority 0.725 / 0.75 (in scope 24 / 25 of 32), category 0.875, out of
    # scope routed 8 of 8, routed away 1 of 32, both cited 6 of 6. Then tuned on: "building
    # block" blocks no release; "each restart" says how often, not how much; "unreachable from all
    # 14 warehouses" is an outage; "~5% errors", "at ~40% capacity", "still serving" are partial;
    # "since yesterday's release" is production; "nothing is reaching", "no bookings are going
    # through": 0.875 (in scope 29 of 32). posthoc31 (40, blind, measured at the session's start
    # and after all of the above): priority 0.625 (in scope 20 of 32) both times, category 0.875,
    # out of scope routed 8 of 8, routed away 2 of 32, both cited 3 of 4. Then tuned on: where no
    # environment is named, the people of the customer's business kept from their work ("loan
    # officers at all 14 branches have been idle", "brokers lose
    # deals") say production; a public site unreachable and "no writes are possible" are outages;
    # "the normal calls are fine", "new instances run fine" are partial; a script that terminates
    # stuck instances is a workaround; a pen test is no test environment: 0.84 (27 of 32).
    # posthoc32 (40, blind, half of them naming no environment), session start / after those
    # rules: 0.70 / 0.75 (in scope 22 / 24 of 32), category 0.825, out of scope routed 8 of 8,
    # routed away 2 of 32, both cited 3 of 4. Then tuned on (losing deals, real subscriptions,
    # employees who won't be paid, the online store down, all stores can't reach HQ): 0.875.
    # posthoc33 (40, written blind last, never tuned on), session start / end: priority 0.825 /
    # 0.85 (in scope 26 of 32 both), category 0.80, out of scope routed 7 of 8, routed away 1 of
    # 32, both cited 4 of 4.
    # Session 15, priority from the rules where a rubric definition is met outright and from the
    # priority model otherwise (app/triage/priority_model.py). posthoc34 and posthoc35 (40 each,
    # written blind) measured before the change with the rules alone / with the model trained
    # without them: priority 0.825 / 0.825 and 0.65 / 0.85; then trained on (0.95, 0.95).
    # posthoc36 (40, written blind after the change, never trained or tuned on): rules alone 0.675,
    # with the model 0.875 (in scope 30 of 33), category 0.85, out of scope routed 6 of 7, routed
    # away 1 of 33, both cited 5 of 5; then trained on. Then a category model too (the words and
    # the best article's category). posthoc37 (48, written blind after both, never trained or tuned
    # on), before the session (rules) / after: priority 0.75 / 0.79 (in scope 0.75 / 0.80),
    # category 0.81 / 0.875, out of scope routed 4 / 5 of 8 (the category model's "other" routes
    # one more; Dapr APIs no article covers stay), routed away 1 of 40, both cited 5 of 6. With
    # posthoc38-42 (240 tickets written blind, trained on): priority 0.83 (in scope 0.85),
    # category 0.92, out of scope routed 6 of 8. posthoc38-42 measured blind for scope before
    # training: in scope routed away 0.075-0.15 (the score); the category model sure of a Dapr
    # category keeps them (0.113 -> 0.042 measured with the model trained without them).
    # posthoc61 (44, written blind in session 21 after its rules, never trained or tuned on):
    # priority 0.955 (in scope 0.944), category 1.0, routed 8 of 8, away 0 of 36, both cited 8 of 8;
    # posthoc63 (44, written blind in session 22 after its rules, never trained or tuned on):
    # priority 0.886 (in scope 0.889), category 1.0, routed 8 of 8, away 0 of 36, both cited 7 of 8;
    # after the priority policy chosen with sets held out of the model: 0.932 (in scope 0.917).
    # posthoc64 (44, written blind at the end of session 22, after all of it, never trained or tuned
    # on): priority 0.909 (in scope 0.889), category 1.0, routed 8 of 8, away 0 of 36, both cited 8 of 8.
    # posthoc65 (44, written blind at the start of session 23 by senders of many kinds, never
    # trained or tuned on): priority 0.955 (in scope 0.944), category 0.977, routed 8 of 8, away 1
    # of 36, both cited 8 of 8.
    # posthoc69 (44, written blind in session 24 after its changes, half non-developers, half long
    # developer tickets, never trained or tuned on): priority 0.955 (in scope 0.972), category
    # 0.886, routed 7 of 8, away 1 of 36, both cited 7 of 8.
    # posthoc72 (60, written blind in session 24 after its first changes, 16 out of scope and 16 with
    # two problems, never trained or tuned on): priority 0.983 (in scope 0.977), category 0.983,
    # routed 15 of 16, away 0 of 44, both cited 15 of 16; the same after the session's second round.
    # The bounds below allow one miss each.
    for name, priority_in_scope, routed_to_person, routed_away, both_cited in (
            ("posthoc72", 0.95, 0.87, 0.03, 0.87),
            ("posthoc69", 0.94, 0.75, 0.06, 0.75),
            ("posthoc65", 0.91, 0.87, 0.06, 0.87),
            ("posthoc64", 0.86, 0.87, 0.03, 0.87),
            ("posthoc63", 0.88, 0.87, 0.03, 0.75),
            ("posthoc61", 0.91, 0.87, 0.03, 0.87),
            ("posthoc37", 0.85, 0.75, 0.03, 0.83),
            ("posthoc36", 0.9, 0.85, 0.04, 1.0), ("posthoc35", 0.96, 0.83, 0.09, 0.83),
            ("posthoc34", 0.93, 0.75, 0.04, 1.0),
            ("posthoc33", 0.81, 0.87, 0.04, 1.0),
            ("posthoc32", 0.87, 1.0, 0.07, 0.75), ("posthoc31", 0.84, 1.0, 0.07, 0.75),
            ("posthoc30", 0.9, 1.0, 0.04, 1.0), ("posthoc28", 0.93, 0.87, 0.07, 1.0),
            ("posthoc27", 1.0, 1.0, 0.0, 0.5), ("posthoc26", 0.96, 1.0, 0.0, 1.0),
            ("posthoc25", 1.0, 0.87, 0.0, 0.75), ("posthoc24", 0.96, 1.0, 0.0, 1.0),
            ("posthoc20", 0.93, 1.0, 0.04, 0.5), ("posthoc19", 0.93, 1.0, 0.07, 1.0),
            ("posthoc18", 0.9, 0.87, 0.04, 1.0),
            ("posthoc16", 0.83, 0.8, 0.07, 0.75),
            ("posthoc10", 0.96, 0.64, 0.04, 0.9), ("posthoc11", 1.0, 0.8, 0.04, 0.8),
            ("posthoc12", 0.71, 0.91, 0.08, 0.75), ("posthoc13", 0.96, 0.75, 0.04, 1.0),
            ("posthoc14", 0.93, 0.71, 0.07, 0.8), ("posthoc15", 0.77, 0.77, 0.04, 1.0)):
        path = POSTHOC_SCOPE_TICKETS.with_name(f"{name}-scope-tickets.jsonl")
        figures = last_line_figures(run_eval(path))
        assert figures["tickets"] == sum(1 for line in path.open() if line.strip()) >= 40
        assert figures["priority_accuracy_in_scope"] >= priority_in_scope
        assert figures["out_of_scope_routed_to_person"] >= routed_to_person
        assert figures["in_scope_routed_away"] <= routed_away
        assert figures["two_problems_both_cited_at_3"] >= both_cited


def test_two_problem_tickets_get_an_article_for_each():
    figures = last_line_figures(run_eval(POSTHOC_SCOPE_TICKETS.with_name("posthoc17-two-problem-tickets.jsonl")))
    assert figures["tickets"] == 24
    assert figures["two_problems_both_cited_at_3"] >= 0.95
    # The first problem's category: the more severe first, and on equal priority the one the
    # customer calls the main one (0.875 before that rule).
    assert figures["category_accuracy"] >= 0.95
    assert figures["top_article_accuracy"] >= 1.0 and figures["in_scope_routed_away"] == 0.0


@pytest.mark.parametrize(("name", "both_cited", "category"), [
    # Session 13, 24 two-problem tickets each, written blind. posthoc21, measured blind: both cited
    # 0.917, category 0.875; its misses led to "1." as a list item, bullets where problems are
    # announced, "second issue", and each problem's impact read from its own part of the ticket
    # (1.0, 0.917 since). posthoc22, measured blind after those (both cited 0.875 and category
    # 0.667 before and after them), then tuned on: a sentence weighing one problem against the
    # other ("the cron one matters more", "b) is the one that hurts", "the outbox can wait"),
    # "neither of them in production", a lab is not production (category 0.833). posthoc23, never
    # tuned on, before / after all of session 13: both cited 1.0 / 1.0, category 0.708 / 0.833,
    # priority 0.792 / 0.75. Session 14: "is offline" became an outage, so in posthoc22's PH22-002
    # a side question and the main problem tie at critical and the one written first leads
    # (category 0.833 -> 0.792). posthoc29 (24, blind, measured before session 14's rules): both
    # cited 0.75, category 0.833, priority 0.79; after them (a hotfix is production, "none have
    # shipped", a count of orders queued): priority 0.875, the rest unchanged; then "side note",
    # "for later" and "q2:" start a second problem: both cited 0.79.
    ("posthoc21", 1.0, 0.91), ("posthoc22", 0.87, 0.79), ("posthoc23", 1.0, 0.83),
    ("posthoc29", 0.79, 0.83)])
def test_later_two_problem_sets_hold(name, both_cited, category):
    figures = last_line_figures(run_eval(POSTHOC_SCOPE_TICKETS.with_name(f"{name}-two-problem-tickets.jsonl")))
    assert figures["tickets"] == 24
    assert figures["two_problems_both_cited_at_3"] >= both_cited
    assert figures["category_accuracy"] >= category


def test_out_of_scope_ticket_is_routed_away_and_cites_nothing(tmp_path):
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text(json.dumps({
        "id": "X", "description": "Our invoice for March lists the wrong VAT number, please correct it.",
        "expected_articles": [], "expected_category": "other"}) + "\n")
    result = run_eval(tickets)
    figures = last_line_figures(result)
    assert figures["out_of_scope_routed_to_person"] == 1.0
    assert figures["category_accuracy"] == 1.0
    assert "miss X" not in result.stderr


def test_calibrate_scope_prints_the_sweep():
    result = run_eval(HOLDOUT_TICKETS, str(POSTHOC_SCOPE_TICKETS), "--calibrate-scope")
    sweep = last_line_figures(result)
    assert 0 < sweep["threshold"] < 1
    assert sweep["in_scope_routed_away"] == 0.0
    assert len(sweep["out_of_scope"]) == 7


def _script_triage(llm: ScriptedLLM, category: str, priority: str) -> None:
    """One ticket's triage agent run: both tools, an answer in prose, then the structured JSON."""
    llm.reply_tool_call("lookup_customer", {})
    llm.reply_tool_call("lookup_system_info", {})
    llm.reply_text(f"Category {category}, priority {priority}: the sidecar certificate expired.")
    llm.reply_text(json.dumps({"category": category, "priority": priority,
                               "summary": "Expired mTLS certificate in staging."}))


def test_llm_mode_runs_the_triage_agent_through_the_chat_client(tmp_path):
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("\n".join(json.dumps(t) for t in [
        {"id": "L1", "customer_id": "CUST002",
         "description": "x509: certificate has expired on every call in staging",
         "expected_articles": ["mtls-cert-expiry"], "expected_category": "security",
         "expected_priority": "medium"},
        {"id": "L2", "customer_id": "CUST001",
         "description": "x509: certificate has expired on every call in staging",
         "expected_articles": ["mtls-cert-expiry"], "expected_category": "security",
         "expected_priority": "medium"},
        {"id": "L3", "customer_id": "CUST001", "description": "Please refund our duplicate invoice.",
         "expected_articles": [], "expected_category": "other", "expected_priority": "low"},
    ]) + "\n")
    llm = ScriptedLLM().start()
    try:
        _script_triage(llm, "security", "medium")
        _script_triage(llm, "ai", "high")  # wrong on both: the figures must count it
        _script_triage(llm, "other", "low")
        result = run_eval(tickets, env=offline_env(LLM_PROVIDER="openai", OPENAI_BASE_URL=llm.base_url,
                                                   OPENAI_API_KEY="test-key", LLM_MODEL="scripted-model"))
    finally:
        llm.stop()
    figures = last_line_figures(result)
    assert figures["mode"] == "llm"
    assert figures["model"] == "scripted-model"
    assert figures["category_accuracy"] == round(2 / 3, 4)
    assert figures["priority_accuracy"] == round(2 / 3, 4)
    assert figures["out_of_scope_routed_to_person"] == 1.0
    assert figures["llm_errors"] == 0
    # 4 calls per ticket (2 tool rounds, the answer, the structuring), 10 + 10 tokens each.
    assert figures["prompt_tokens"] == 120 and figures["completion_tokens"] == 120
    assert [t["id"] for t in figures["per_ticket"]] == ["L1", "L2", "L3"]
    assert all(t["latency_s"] > 0 for t in figures["per_ticket"])
    assert len(llm.requests) == 12
    first = llm.requests[0]
    assert first["model"] == "scripted-model"
    assert "You triage tickets filed with the Dapr support team." in first["messages"][0]["content"]
    assert "x509: certificate has expired" in first["messages"][1]["content"]
    assert {tool["function"]["name"] for tool in first["tools"]} == {"lookup_customer",
                                                                   "lookup_system_info"}
    # The tools answered from the ticket's own customer record (CUST002 for L1).
    tool_results = [m["content"] for m in llm.requests[2]["messages"] if m["role"] == "tool"]
    assert any("TechStart Inc" in content for content in tool_results)
    assert "miss L2" in result.stderr


def test_llm_mode_counts_a_malformed_answer_as_an_error(tmp_path):
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text(json.dumps({"id": "M1", "description": "Sidecar OOMKilled in staging",
                                   "expected_category": "deployment",
                                   "expected_priority": "medium"}) + "\n")
    llm = ScriptedLLM().start()
    try:
        llm.reply_text("It is a deployment problem.")
        llm.reply_text("not json")
        result = run_eval(tickets, env=offline_env(LLM_PROVIDER="openai", OPENAI_BASE_URL=llm.base_url,
                                                   OPENAI_API_KEY="test-key"))
    finally:
        llm.stop()
    figures = last_line_figures(result)
    assert figures["mode"] == "llm" and figures["llm_errors"] == 1
    assert figures["category_accuracy"] == 0.0
    assert "llm error: structured answer is not a triage" in result.stderr
