import pytest

from app.expert.compose import (
    MAX_OFFLINE_CONFIDENCE,
    RRF_K,
    ExpertProposal,
    compose_offline_proposal,
    fuse_results,
    lead_with_category,
)
from app.expert.queries import build_kb_queries, condense
from app.knowledge.articles import load_articles
from app.expert.problems import _said_weight, split_problems
from app.knowledge.search import SearchHit, get_knowledge_search
from app.triage.scope import ScopeAssessment

SYSTEM_INFO = {"dapr_version": "1.14.4", "cloud": "azure", "platform": "kubernetes",
               "applications": ["checkout", "orders"]}


def hit(slug: str, score: float = 1.0) -> SearchHit:
    article = load_articles()[slug]
    return SearchHit(slug=slug, title=article.title, category=article.category, score=score,
                     snippet=article.symptoms[0])


# --- queries -------------------------------------------------------------------------------


def test_queries_are_the_description_its_terms_and_a_context_variant():
    description = "Sidecar logs 'x509: certificate has expired' on every call to the orders app."
    queries = build_kb_queries(description, "security", SYSTEM_INFO)
    assert len(queries) == 3
    assert len({q.lower() for q in queries}) == 3
    assert queries[0] == description
    assert queries[1].startswith("x509: certificate has expired")
    assert queries[2].startswith("security x509: certificate has expired")
    assert queries[2].endswith("dapr 1.14.4 kubernetes azure")


def test_engineer_notes_add_a_query():
    description = "Our timers never fire; daprd logs 'no scheduler host addresses provided'."
    queries = build_kb_queries(description, "workflow", None, notes="check the scheduler PVC")
    assert len(queries) == 4
    assert queries[3] == ("check the scheduler PVC no scheduler host addresses provided "
                          "timers never fire daprd logs")


@pytest.mark.parametrize("description", ["workflow", "", "   "])
def test_short_descriptions_still_give_three_distinct_queries(description):
    queries = build_kb_queries(description, "workflow", None)
    assert len(queries) >= 3
    assert len({q.lower() for q in queries}) == len(queries)
    assert all(q.strip() for q in queries)


def test_condense_keeps_messages_and_identifiers_first_and_drops_filler():
    text = ("Since this morning we can't start, it's failing with 'NOAUTH Authentication required' "
            "on redis-master:6379")
    assert condense(text) == ("NOAUTH Authentication required redis-master:6379 start failing")


# --- fusion --------------------------------------------------------------------------------


def test_fusion_sums_reciprocal_ranks():
    fused = fuse_results([[hit("placement-unreachable"), hit("workflow-stuck")],
                          [hit("workflow-stuck"), hit("scheduler-unreachable")]], k=5)
    assert [h.slug for h in fused] == ["workflow-stuck", "placement-unreachable",
                                       "scheduler-unreachable"]
    assert fused[0].score == round(1 / (RRF_K + 2) + 1 / (RRF_K + 1), 6)
    assert fused[1].score == round(1 / (RRF_K + 1), 6)
    assert fused[2].score == round(1 / (RRF_K + 2), 6)


def test_fusion_ties_break_on_best_rank_then_slug():
    fused = fuse_results([[hit("tracing-setup"), hit("logging-config")],
                          [hit("logging-config"), hit("tracing-setup")],
                          [hit("metrics-prometheus")], [hit("app-health-checks")]], k=10)
    # tracing/logging tie on score and best rank: slug order decides; the single hits come after.
    assert [h.slug for h in fused] == ["logging-config", "tracing-setup", "app-health-checks",
                                       "metrics-prometheus"]


def test_fusion_respects_k_and_handles_empty_input():
    assert fuse_results([], k=5) == []
    assert fuse_results([[], []], k=5) == []
    lists = [[hit(s) for s in ("port-conflicts", "app-port-mismatch", "max-body-size")]]
    assert [h.slug for h in fuse_results(lists, k=2)] == ["port-conflicts", "app-port-mismatch"]


# --- composition ---------------------------------------------------------------------------


def test_proposal_is_built_from_the_cited_articles():
    hits = [hit("app-port-mismatch"), hit("grpc-app-protocol"), hit("app-health-checks"),
            hit("port-conflicts")]
    proposal = compose_offline_proposal("Sidecar cannot reach the app on port 5000", hits)
    top = load_articles()["app-port-mismatch"]

    assert set(proposal) == {"summary", "likely_causes", "steps", "cited_articles", "confidence",
                             "generated_by", "in_scope", "confidence_signals", "past_cases"}
    assert proposal["in_scope"] is True
    assert len(proposal["confidence_signals"]) == 4
    assert proposal["generated_by"] == "offline"
    assert proposal["cited_articles"] == ["app-port-mismatch", "grpc-app-protocol",
                                          "app-health-checks"]
    assert proposal["steps"][:len(top.steps)] == top.steps
    assert proposal["steps"][len(top.steps)].startswith("If the problem persists, check")
    assert "(grpc-app-protocol)" in proposal["steps"][len(top.steps)]
    assert proposal["likely_causes"][:len(top.causes)] == top.causes
    assert proposal["summary"].startswith("Composed offline from the knowledge base (no LLM).")
    assert "(app-port-mismatch)" in proposal["summary"]
    assert 0.2 <= proposal["confidence"] <= MAX_OFFLINE_CONFIDENCE
    assert ExpertProposal.model_validate(proposal).cited_articles == proposal["cited_articles"]


def test_the_triaged_category_s_best_article_leads():
    hits = [hit("metrics-prometheus"), hit("state-store-connection"), hit("state-etag-conflict"),
            hit("component-scopes")]
    assert [h.slug for h in lead_with_category(hits, "state")] == [
        "state-store-connection", "metrics-prometheus", "state-etag-conflict", "component-scopes"]
    # Unchanged when the best hit is of that category, when none is, and with no category.
    assert lead_with_category(hits, "observability") == hits
    assert lead_with_category(hits, "ai") == hits
    assert lead_with_category(hits, None) == hits
    proposal = compose_offline_proposal("Our Redis state store cannot connect: i/o timeout", hits,
                                        category="state")
    assert proposal["cited_articles"] == ["state-store-connection", "metrics-prometheus", "state-etag-conflict"]


def test_notes_are_mentioned_in_the_summary():
    proposal = compose_offline_proposal("Timers never fire", [hit("scheduler-unreachable")],
                                        notes="  Customer runs slim init;\nno containers. ")
    assert proposal["summary"].endswith("Revised per engineer notes: Customer runs slim init; no containers.")


def test_out_of_scope_ticket_cites_nothing_and_proposes_nothing():
    proposal = compose_offline_proposal(
        "Our invoice for November lists 12 seats but we only have 8 engineers.",
        [hit("pubsub-duplicates")])
    assert proposal["in_scope"] is False
    assert proposal["cited_articles"] == [] and proposal["steps"] == []
    assert proposal["confidence"] == 0.0
    assert "A person will answer" in proposal["summary"]


def test_no_hits_gives_an_escalation_proposal_with_zero_confidence():
    in_scope = ScopeAssessment(in_scope=True, score=0.9, reason="given", signals=[])
    proposal = compose_offline_proposal("qwxzv", [], scope=in_scope)
    assert proposal["cited_articles"] == []
    assert proposal["likely_causes"] == []
    assert proposal["confidence"] == 0.0
    assert len(proposal["steps"]) == 1 and "engineer" in proposal["steps"][0]
    assert "No article matches" in proposal["summary"]


def test_confidence_grows_with_how_much_of_the_ticket_the_article_covers():
    covered = compose_offline_proposal("x509 certificate expired, renew the Dapr root certificate",
                                       [hit("mtls-cert-expiry")])["confidence"]
    vague = compose_offline_proposal("our invoices look odd to the finance department, certificate",
                                     [hit("mtls-cert-expiry")])["confidence"]
    assert covered > vague


def test_end_to_end_offline_path_cites_the_right_article_first():
    description = "Sidecar says 'no scheduler host addresses provided' and reminders never trigger."
    search = get_knowledge_search()
    queries = build_kb_queries(description, "workflow", SYSTEM_INFO)
    fused = fuse_results([search.search(q) for q in queries])
    proposal = compose_offline_proposal(description, fused)
    assert proposal["cited_articles"][0] == "scheduler-unreachable"
    assert any("--scheduler-host-address" in step for step in proposal["steps"])


TWO_PROBLEMS = ("After enabling an API token on the sidecar our app gets 401 on every call in "
                "production, and we also see the sidecar running out of memory every few hours "
                "in staging.")


def test_two_problems_are_split_and_ordered_by_impact():
    problems = split_problems(TWO_PROBLEMS)
    assert [p.slug for p in problems] == ["api-token-auth", "sidecar-resources"]
    assert [p.priority for p in problems] == ["high", "medium"]
    # One problem only: the whole description.
    single = split_problems("Sidecar logs 'x509: certificate has expired', and calls fail.")
    assert len(single) == 1 and single[0].slug == "mtls-cert-expiry"


def test_a_clause_pointing_back_is_impact_not_a_problem():
    problems = split_problems("The sidecar won't start: 'bind: address already in use' on port "
                              "9090. This blocks the production rollout of our new release.")
    assert [p.slug for p in problems] == ["port-conflicts"]


def test_a_clause_marked_as_additional_starts_a_second_problem():
    # Neither clause leads its runner-up clearly (Jobs API vs scheduler, duplicates vs not
    # delivered); "separately" says a second problem starts, so each side is one problem.
    marked = split_problems("Jobs we schedule through the Jobs API never run in our test cluster, "
                            "and separately the subscriber gets each message twice.")
    assert len(marked) == 2 and marked[1].slug == "pubsub-duplicates"
    assert marked[0].slug in ("jobs-api-scheduling", "scheduler-unreachable")
    # Without the marker the retrieval margin decides, as before: one problem.
    unmarked = split_problems("Jobs we schedule through the Jobs API never run in our test "
                              "cluster, and the subscriber gets each message twice.")
    assert len(unmarked) == 1


@pytest.mark.parametrize("marker", ["And while we're at it: ", "On another note, ", "One more thing: ",
                                    "PS: ", "Unrelated to that, ", "But the bigger problem: ",
                                    "Side note, not urgent - ", "For later: ", "q2: "])
def test_more_ways_of_saying_a_second_problem_starts(marker):
    marked = split_problems("Jobs we schedule through the Jobs API never run in our test cluster. "
                            f"{marker}the subscriber gets each message twice.")
    assert len(marked) == 2 and "pubsub-duplicates" in {p.slug for p in marked}, (marker, marked)


def test_numbered_items_of_an_announced_list_are_problems_of_their_own():
    # Neither item leads clearly without its number; "Two issues" and the numbers say two start.
    listed = ("Two issues.\n1) Jobs we schedule through the Jobs API never run in our test cluster.\n"
              "2) Lower priority: the subscriber gets each message twice.")
    problems = split_problems(listed)
    assert len(problems) == 2 and problems[1].slug == "pubsub-duplicates", problems
    assert problems[0].slug in ("jobs-api-scheduling", "scheduler-unreachable")
    # Numbered steps with no announcement are one problem told in steps.
    steps = ("Jobs we schedule never run in our test cluster. Steps:\n1) schedule a job through the Jobs API\n"
             "2) wait for its due time")
    assert len(split_problems(steps)) == 1


def test_bulleted_and_dotted_items_and_a_second_issue_start_problems():
    # "1." is a clause of its own once clauses are cut at full stops; bullets count where the
    # ticket announces its problems.
    for listed in ("Two things:\n1. Jobs we schedule through the Jobs API never run in our test cluster.\n"
                   "2. The subscriber gets each message twice.",
                   "Two pub/sub points:\n- Jobs we schedule through the Jobs API never run in our test cluster.\n"
                   "- The subscriber gets each message twice.",
                   "First issue: jobs we schedule through the Jobs API never run in our test cluster. "
                   "Second issue: the subscriber gets each message twice."):
        assert "pubsub-duplicates" in {p.slug for p in split_problems(listed)}, listed


def test_what_one_problem_says_of_its_impact_stays_with_it():
    # "Nothing is broken by it" speaks of the first item, not of the production outage after it.
    problems = split_problems(
        "Two things.\n1. Which CLI version goes with runtime 1.15? Nothing is broken by it.\n"
        "2. Our production booking system is down: every actor call times out, the sidecars cannot "
        "connect to the placement service.")
    assert problems[0].slug == "placement-unreachable" and problems[0].priority == "critical", problems


@pytest.mark.parametrize("weighing", [
    "The subscriber one matters more to us.", "b) is the one that hurts.", "The second one is more urgent.",
    "The scheduling one can wait.", "The jobs can wait a week, the twice-delivered messages cannot."])
def test_a_sentence_weighing_one_problem_against_the_other_orders_them(weighing):
    # Both outside production (one priority): the customer's own weighing, in a sentence naming
    # a problem by its place or by a word of it, puts the duplicates first.
    ticket = ("Two issues, both in our test cluster:\na) Jobs we schedule through the Jobs API never run.\n"
              "b) The subscriber gets each message twice.\n" + weighing)
    problems = split_problems(ticket)
    assert [p.slug for p in problems][:1] == ["pubsub-duplicates"], (weighing, problems)
    assert problems[0].priority == problems[1].priority


def test_a_sentence_telling_the_setup_is_no_problem():
    problems = split_problems("We're designing a new order service on Dapr. How do we save the order to the state "
                              "store and publish OrderCreated atomically? And what is the pattern for messages "
                              "that keep failing in the subscriber?")
    # The setup sentence matched an article of its own (runtime-upgrade) and was read as the first problem.
    assert [p.slug for p in problems][0] == "outbox-transactional", problems
    assert "runtime-upgrade" not in {p.slug for p in problems}


def test_between_problems_of_one_priority_what_the_customer_calls_the_main_one_leads():
    asked = ("Quick question before the real issue: when two users edit the same profile at the same "
             "moment, the last save silently wins. How do we make the second save fail instead? The "
             "actual issue: in staging we use the transactional outbox with a Postgres state store. The "
             "state transaction commits, but the matching event never appears on the topic.")
    problems = split_problems(asked)
    assert [p.priority for p in problems][0] == problems[-1].priority
    assert [p.slug for p in problems] == ["outbox-transactional", "state-etag-conflict"]
    # "quick question" opening a ticket says nothing of another problem's weight.
    assert _said_weight("quick question on the python workflow SDK") == 0


@pytest.mark.parametrize(("ticket", "slugs"), [
    # "But the bigger problem: in production ..." matches no article strongly alone; the
    # sentences after it do. The customer called it the bigger one: it leads on equal priority.
    ("Hi, our traces show the HTTP spans but none of the pub/sub spans, is there a sampling setting we "
     "miss? But the bigger problem: in production the same message id is handed to our handler again "
     "and again, the handler takes 40 seconds and then returns 200.",
     ["pubsub-duplicates", "tracing-setup"]),
    # Joined without its connective ("Unrelated, but while ..."), the segment is not in the text
    # verbatim; it still counts from where it starts, after the first problem.
    ("Since the new access control config went out in prod, calls from partner-gateway to quotes-api "
     "fail with 403 access control policy has denied access. Unrelated, but while I have you: "
     "quotes-api sometimes takes 30s to answer and we would like invocations to give up after 5s and "
     "retry twice.",
     ["invocation-acl", "resiliency-policies"]),
])
def test_a_marked_second_problem_is_found_and_ordered_on_equal_priority(ticket, slugs):
    problems = split_problems(ticket)
    assert [p.slug for p in problems] == slugs
    assert problems[0].priority == problems[1].priority


def test_words_near_a_marker_do_not_start_a_problem():
    # "note", "main" and "issue" alone are no markers.
    for text in ("Jobs we schedule through the Jobs API never run in our test cluster. "
                 "Note the subscriber gets each message twice.",
                 "Jobs we schedule through the Jobs API never run in our main cluster, and the issue "
                 "is the subscriber gets each message twice."):
        assert len(split_problems(text)) == 1, text


class CannedSearch:
    """A knowledge search answering each text from a table (articles and scores chosen by the
    test), so that the split's rules are checked apart from BM25's numbers."""

    def __init__(self, answers: dict[str, list[tuple[str, float]]]):
        self.answers = answers

    def search(self, text: str, k: int = 5) -> list[SearchHit]:
        return [hit(slug, score) for slug, score in self.answers.get(text, [])][:k]


# Two sentences, no connective. The second sentence's first clause leads its runner-up too
# narrowly to name a problem alone; the whole sentence leads clearly.
FIRST = "Calls to app id pricing fail with ERR_DIRECT_INVOKE."
GROWTH = "Our state table is 60 GB of finished instances"
QUESTION = "can we expire them?"
SECOND = f"{GROWTH}; {QUESTION}"


def canned_split(monkeypatch, second_sentence_best: str) -> list[str]:
    answers = {
        FIRST: [("service-invocation-errors", 24.0), ("invocation-acl", 10.0)],
        GROWTH: [(second_sentence_best, 13.0), ("actor-state-store-missing", 11.0)],
        QUESTION: [(second_sentence_best, 4.0)],
        SECOND: [(second_sentence_best, 18.0), ("actor-state-store-missing", 11.0)],
        f"{FIRST} {SECOND}": [("service-invocation-errors", 30.0)],  # one problem: the whole
    }
    monkeypatch.setattr("app.expert.problems.get_knowledge_search", lambda: CannedSearch(answers))
    return [p.slug for p in split_problems(f"{FIRST} {SECOND}")]


def test_a_sentence_clearly_matching_another_category_is_a_problem_without_a_marker(monkeypatch):
    # workflow-history-growth (workflow) vs service-invocation-errors (connectivity).
    assert canned_split(monkeypatch, "workflow-history-growth") == [
        "service-invocation-errors", "workflow-history-growth"]


def test_a_later_sentence_matching_the_same_family_of_articles_stays_with_the_problem(monkeypatch):
    # app-port-mismatch matches as clearly, but it is another connectivity article (the same
    # family as the first problem's): more about that problem, not a second one.
    assert canned_split(monkeypatch, "app-port-mismatch") == ["service-invocation-errors"]


def test_a_clause_giving_a_consequence_is_impact_not_a_problem(monkeypatch):
    injector = "The sidecar injector pod is Pending, so new pods start without daprd."
    consequence = "the apps get no answer on port 3500, checkout is dead for every customer."
    answers = {injector: [("sidecar-injection", 20.0), ("helm-ha-install", 8.0)],
               f"Because {consequence}": [("grpc-app-protocol", 14.0), ("app-port-mismatch", 6.0)],
               f"Now {consequence}": [("grpc-app-protocol", 14.0), ("app-port-mismatch", 6.0)],
               f"{injector} Because {consequence}": [("sidecar-injection", 24.0)],
               f"{injector} Now {consequence}": [("sidecar-injection", 24.0)]}
    monkeypatch.setattr("app.expert.problems.get_knowledge_search", lambda: CannedSearch(answers))
    assert [p.slug for p in split_problems(f"{injector} Because {consequence}")] == ["sidecar-injection"]
    # The same clause as a statement of its own names a second problem (of another category).
    assert len(split_problems(f"{injector} Now {consequence}")) == 2


def test_a_sentence_telling_the_impact_is_not_a_problem():
    problems = split_problems("The subscriber never receives the messages we publish to the orders "
                              "topic. Every order since this morning is stuck and customers are "
                              "calling support.")
    assert [p.slug for p in problems] == ["pubsub-not-delivered"]


def test_queries_cover_each_problem():
    queries = build_kb_queries(TWO_PROBLEMS, "security", None)
    assert len(queries) == 5
    assert any(q.startswith("we also see the sidecar running out of memory") for q in queries)


def test_two_problem_proposal_cites_and_answers_both_in_impact_order():
    search = get_knowledge_search()
    fused = fuse_results([search.search(q) for q in build_kb_queries(TWO_PROBLEMS, "security", None)])
    proposal = compose_offline_proposal(TWO_PROBLEMS, fused)
    assert proposal["cited_articles"][:2] == ["api-token-auth", "sidecar-resources"]
    memory_steps = [s for s in proposal["steps"] if s.startswith("Problem 2,")]
    assert memory_steps and "(sidecar-resources)" in memory_steps[0]
    assert "reports 2 problems" in proposal["summary"]


def test_the_third_citation_is_the_runner_up_of_the_problem_least_sure_of_its_article():
    from app.expert.problems import Problem

    sure = Problem(text="a", slug="conversation-api-setup", score=36.0, priority="medium",
                   hits=[hit("conversation-api-setup", 36.0), hit("tracing-setup", 8.0)])
    unsure = Problem(text="b", slug="pubsub-raw-payload", score=14.0, priority="medium",
                     hits=[hit("pubsub-raw-payload", 14.0), hit("max-body-size", 12.0)])
    fused = [hit("conversation-api-setup"), hit("tracing-setup"), hit("pubsub-raw-payload")]
    in_scope = ScopeAssessment(in_scope=True, score=0.9, reason="r", signals=[])
    proposal = compose_offline_proposal("two problems", fused, scope=in_scope, problems=[sure, unsure])
    assert proposal["cited_articles"] == ["conversation-api-setup", "pubsub-raw-payload", "max-body-size"]
    # Both problems matched surely: the fused ranking fills the third place as before.
    surer = unsure.model_copy(update={"hits": [hit("pubsub-raw-payload", 14.0), hit("max-body-size", 3.0)]})
    proposal = compose_offline_proposal("two problems", fused, scope=in_scope, problems=[sure, surer])
    assert proposal["cited_articles"] == ["conversation-api-setup", "pubsub-raw-payload", "tracing-setup"]


def test_confidence_is_lower_when_articles_compete():
    clear = compose_offline_proposal("daprd logs 'no scheduler host addresses provided' and "
                                     "reminders never fire", [hit("scheduler-unreachable")])
    vague = compose_offline_proposal("the sidecar has a problem with the app", [hit("app-port-mismatch")])
    assert 0 < vague["confidence"] < clear["confidence"] <= MAX_OFFLINE_CONFIDENCE


@pytest.mark.parametrize("ordinal", ["Secondly, ", "Second, a smaller question: ", "Finally, "])
def test_an_ordinal_opening_starts_a_second_problem_read_whole(ordinal):
    # The first problem's setup and the facts checked and found fine ("the key is correct") are
    # context of that problem, not problems of their own; the second is read with all its words.
    ticket = ("In production every call to our summariser through the Conversation API fails with "
              "ERR_CONVERSATION_INVOKE since we pointed the openai component at our own endpoint. The key comes "
              "from a secret reference and is correct, a curl with it succeeds. "
              f"{ordinal}is there a sidecar metric we can alert on, and how would Prometheus scrape it?")
    assert [p.slug for p in split_problems(ticket)] == ["conversation-api-setup", "metrics-prometheus"]
