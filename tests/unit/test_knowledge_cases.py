"""Resolved cases: the scrubbing that keeps one customer's data out of another's proposal, the
store layout (idempotent insert, sharded list, retraction), the BM25 search and its relevance
rule, and the offline expert citing a past resolution."""

from __future__ import annotations

import json

import pytest

from app.expert.compose import compose_offline_proposal, rank_with_past_cases
from app.knowledge.articles import load_articles
from app.knowledge.case_store import CASE_SHARDS, CaseNotFound, CaseStore, ResolvedCase, case_key, shard_key
from app.knowledge.cases import CaseIndex, CaseLibrary
from app.knowledge.scrub import QUOTE_MARK, scrub_solution
from app.knowledge.search import get_knowledge_search
from setup_sample_data import CUSTOMERS, SYSTEMS
from tests.unit.memory_state_store import MemoryStateStore

ACME_DESCRIPTION = ("Our production checkout service is completely down: every call through the sidecar fails "
                    "with connection refused to the app on port 5000 since this morning's deploy.")
ACME_SOLUTION = ("Acme Corporation: your checkout app listens on 8080 but the sidecar was started with "
                 "--app-port 5000. Set dapr.io/app-port to 8080 on the checkout deployment in your "
                 "kubernetes (AKS) cluster (Dapr 1.14.4), redeploy, and mail ops@acme.example when done. "
                 "CUST001 confirmed: every call through the sidecar fails with connection refused to the app, "
                 "from 10.1.2.3.")


def scrub_acme(text=ACME_SOLUTION):
    return scrub_solution(text, customer_id="CUST001", customer_name=CUSTOMERS["CUST001"]["name"],
                          system_info=SYSTEMS["CUST001"], description=ACME_DESCRIPTION)


def test_scrubbing_removes_the_customers_name_id_systems_contacts_and_quotes():
    scrubbed = scrub_acme()
    text = scrubbed.text
    for secret in ("Acme", "acme", "CUST001", "checkout", "1.14.4", "kubernetes (AKS)", "ops@", "10.1.2.3",
                   "every call through the sidecar fails with connection refused"):
        assert secret not in text, (secret, text)
    assert "[customer]" in text and "[application]" in text and "[version]" in text and QUOTE_MARK in text
    # The fix itself survives.
    assert "--app-port 5000" in text and "dapr.io/app-port to 8080" in text
    assert scrubbed.redactions >= 8


def test_scrubbing_matches_whole_words_only_and_leaves_a_clean_text_alone():
    clean = "Set --app-port to the port the application listens on and restart the sidecar."
    assert scrub_acme(clean).text == clean and scrub_acme(clean).redactions == 0
    # "Acme" inside another word is not the customer.
    assert scrub_acme("Use the acmeish tool").text == "Use the acmeish tool"


def case(ticket_id="T-A", text="Set --app-port to the port the app listens on, then restart the sidecar",
         category="connectivity", cited=("app-port-mismatch",), **extra) -> ResolvedCase:
    return ResolvedCase(ticket_id=ticket_id, text=text, category=category, cited_articles=list(cited),
                        approver="eng-1", resolved_at="2026-11-23T12:00:00+00:00", **extra)


def test_a_case_is_stored_once_and_listed_in_exactly_one_shard():
    memory = MemoryStateStore()
    store = CaseStore(memory)
    created, stored = store.add(case())
    again, stored_again = store.add(case(text="a later, different text"))
    assert (created, again) == (True, False)
    assert stored_again.text == stored.text  # the first case of a ticket wins
    writes = list(memory.writes)
    assert writes.count(case_key("T-A")) == 1
    assert len([w for w in writes if w.startswith("cases-index:")]) == 1  # the retry rewrote no shard
    assert store.shards()[0] == ["T-A"]


def test_listing_many_cases_touches_no_single_key_for_every_case():
    memory = MemoryStateStore()
    store = CaseStore(memory)
    for n in range(64):
        store.add(case(ticket_id=f"T-{n}"))
    shard_writes = [w for w in memory.writes if w.startswith("cases-index:")]
    assert len(shard_writes) == 64
    busiest = max(shard_writes.count(shard_key(s)) for s in range(CASE_SHARDS))
    assert busiest < 16  # 64 cases over 16 shards: no shard takes every write
    assert store.shards()[0] == sorted(f"T-{n}" for n in range(64))
    assert [c.ticket_id for c in store.all()] == sorted(f"T-{n}" for n in range(64))


def test_retraction_is_recorded_once_and_an_unknown_case_is_not_found():
    store = CaseStore(MemoryStateStore())
    store.add(case())
    retracted = store.retract("T-A", by="eng-2", at="2026-11-24T00:00:00+00:00", reason="wrong fix")
    again = store.retract("T-A", by="eng-3", at="2026-11-25T00:00:00+00:00")
    assert retracted.retracted and again.retracted_by == "eng-2" and again.retraction_reason == "wrong fix"
    with pytest.raises(CaseNotFound):
        store.retract("T-NONE", by="eng-2", at="x")


def test_the_search_needs_shared_words_and_the_tickets_best_article():
    index = CaseIndex([case(), case(ticket_id="T-B", text="Rotate the API token and restart", category="security",
                                    cited=("api-token-auth",))])
    query = "sidecar cannot connect: app listens on 8080, app-port set to 5000"
    [hit] = index.search(query, articles=["app-port-mismatch"])
    assert hit.case.ticket_id == "T-A" and hit.shared_terms >= 3
    # The same words, but the ticket's best article is another one: not this problem, even when
    # the case's article is further down the ticket's ranking.
    assert index.search(query, articles=["pubsub-duplicates"]) == []
    assert index.search(query, articles=["port-conflicts", "app-port-mismatch"]) == []
    # Related, but sharing too few words.
    assert index.search("restart", articles=["app-port-mismatch"]) == []
    assert index.search(query, articles=["app-port-mismatch"], exclude={"T-A"}) == []


def test_the_library_refreshes_on_a_new_case_and_never_returns_a_retracted_one():
    memory = MemoryStateStore()
    store = CaseStore(memory)
    library = CaseLibrary(store)
    query = "sidecar cannot connect: app listens on 8080, app-port set to 5000"
    assert library.search(query, articles=["app-port-mismatch"]) == []
    store.add(case())
    assert [h.case.ticket_id for h in library.search(query, articles=["app-port-mismatch"])] == ["T-A"]
    # Retracted through another store client (another replica): the index still holds it, the
    # search re-reads it and drops it.
    CaseStore(memory).retract("T-A", by="eng-2", at="2026-11-24T00:00:00+00:00")
    assert library.search(query, articles=["app-port-mismatch"]) == []
    assert "T-A" not in library.refresh()  # and it left the index


def test_the_incremental_index_scores_as_bm25s_does_over_every_case():
    import random

    import bm25s

    from app.knowledge.search import analyze

    rng = random.Random(7)
    words = ("sidecar app port connection refused restart token mtls certificate pubsub redis timeout "
             "actor reminder placement scheduler workflow state etag kubernetes helm annotation").split()
    cases = [case(ticket_id=f"T-{i:03d}", text=" ".join(rng.choices(words, k=rng.randint(5, 40))),
                  cited=("app-port-mismatch",) if i % 3 else ("other-article",)) for i in range(120)]
    query = "sidecar cannot reach the app: connection refused on the app port after a restart"
    index = CaseIndex(cases)
    hits = index.search(query, articles=["app-port-mismatch"], k=len(cases))
    reference = bm25s.BM25(k1=1.2, b=0.75)
    reference.index([analyze(f"{c.text}\n{c.category}\n{' '.join(c.cited_articles)}") for c in cases],
                    show_progress=False)
    expected = reference.get_scores(list(dict.fromkeys(analyze(query))))
    assert len(hits) > 20
    for hit in hits:
        assert hit.score == pytest.approx(float(expected[cases.index(hit.case)]), rel=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_the_library_reads_only_the_cases_it_has_not_indexed():
    memory = MemoryStateStore()
    store = CaseStore(memory)
    for i in range(5):
        store.add(case(ticket_id=f"T-{i}"))
    read = []
    real_get_many = store.get_many
    store.get_many = lambda ids: read.append(list(ids)) or real_get_many(ids)
    library = CaseLibrary(store)
    query = "sidecar cannot connect: app listens on 8080, app-port set to 5000"
    assert len(library.search(query, articles=["app-port-mismatch"], k=10)) == 5
    store.add(case(ticket_id="T-NEW"))
    assert len(library.search(query, articles=["app-port-mismatch"], k=10)) == 6
    library.search(query, articles=["app-port-mismatch"], k=10)  # nothing changed: nothing read
    assert read == [[f"T-{i}" for i in range(5)], ["T-NEW"]]


def test_the_offline_expert_cites_the_past_case_with_its_provenance_and_no_customer_data():
    memory = MemoryStateStore()
    store = CaseStore(memory)
    scrubbed = scrub_acme()
    store.add(case(ticket_id="T-ACME", text=scrubbed.text, redactions=scrubbed.redactions))
    library = CaseLibrary(store)
    description = ("TechStart: our order-processor sidecar gets connection refused, the app listens on 3000 "
                   "but app-port is 5000")
    search = get_knowledge_search()
    results = [search.search(description, k=5)]
    fused, past = rank_with_past_cases(results, lambda slugs: library.search(
        description, articles=slugs))
    proposal = compose_offline_proposal(description, fused, past_cases=past)
    [cited] = proposal["past_cases"]
    assert cited["ticket_id"] == "T-ACME" and cited["approver"] == "eng-1" and cited["kind"] == "past_resolution"
    assert cited["resolved_at"] == "2026-11-23T12:00:00+00:00" and "app-port-mismatch" in proposal["cited_articles"]
    secrets = ["Acme", "CUST001", "ops@acme", ACME_DESCRIPTION[:40], "1.14.4", "AKS", "inventory", "payments",
               "checkout"]
    past_text = json.dumps(proposal["past_cases"])
    for secret in secrets:
        assert secret not in past_text, secret
    # The whole proposal too, for what the curated articles do not say themselves (an article's
    # example names a `checkout` app).
    articles = " ".join(a.body for a in load_articles().values())
    text = json.dumps(proposal)
    for secret in secrets:
        assert secret in articles or secret not in text, secret


def test_past_cases_fold_their_articles_into_the_ranking():
    search = get_knowledge_search()
    results = [search.search("sidecar cannot reach my app", k=5)]
    baseline, _ = rank_with_past_cases(results, lambda slugs: [])
    best, past_article = baseline[0].slug, baseline[-1].slug
    hit = CaseIndex([case(cited=(best, past_article))]).search(
        "sidecar cannot reach my app listens port restart", articles=[h.slug for h in baseline])
    assert hit, "the case must match for this test to mean anything"
    boosted, citations = rank_with_past_cases(results, lambda slugs: hit)
    assert boosted[0].slug == best
    assert [h.slug for h in boosted].index(past_article) < [h.slug for h in baseline].index(past_article)
    assert citations[0]["ticket_id"] == "T-A"


def test_an_out_of_scope_ticket_cites_no_past_case():
    proposal = compose_offline_proposal("We were charged twice for our support plan, please refund the invoice",
                                        [], past_cases=[{"ticket_id": "T-A"}])
    assert proposal["past_cases"] == [] and proposal["cited_articles"] == []


def test_the_index_activity_stores_the_scrubbed_case_once_and_logs_it(monkeypatch, caplog):
    from types import SimpleNamespace

    from app.activities import deps
    from app.activities.cases import index_resolved_case
    from app.workflows.contracts import IndexCaseRequest

    memory = MemoryStateStore()
    monkeypatch.setattr(deps, "_current", SimpleNamespace(records=memory))
    caplog.set_level("INFO")  # a log field the logging module reserves fails only when emitted
    request = IndexCaseRequest(ticket_id="T-ACME", customer_id="CUST001", customer_name="Acme Corporation",
                               system_info=SYSTEMS["CUST001"], description=ACME_DESCRIPTION, category="connectivity",
                               solution=ACME_SOLUTION, edited=True, cited_articles=["app-port-mismatch"],
                               approver="eng-1", resolved_at="2026-11-23T12:00:00+00:00")
    first = index_resolved_case(None, request)
    again = index_resolved_case(None, request)
    assert (first.created, again.created) == (True, False) and first.redactions >= 8
    stored = CaseStore(memory).get("T-ACME")
    assert "Acme" not in stored.text and "CUST001" not in stored.text and stored.edited
    assert any(r.getMessage() == "resolved case indexed" for r in caplog.records)
