"""Which Dapr APIs the knowledge base covers, computed from the articles, and the scope decision
for a ticket about one it does not cover."""

from app.knowledge.articles import Article
from app.triage import dapr_apis
from app.triage.dapr_apis import named_uncovered_api, uncovered_apis
from app.triage.scope import SCOPE_THRESHOLD, assess_scope

LOCK_TICKET = ("In staging two replicas of the poller both acquire the Dapr distributed lock on the same "
               "resource id with our lock.redis component, so both run the job. Is the lease per app id?")


def test_coverage_is_read_from_the_articles():
    uncovered = uncovered_apis()
    # The articles cover these (the knowledge base has topics on each)...
    assert not {"service invocation", "state management", "publish and subscribe", "actors", "workflow",
                "jobs", "conversation"} & uncovered
    # ...and none of them names these.
    assert {"distributed lock", "cryptography", "pluggable components"} <= uncovered


def test_an_article_on_an_api_makes_it_covered(monkeypatch):
    from app.knowledge import articles

    known = articles.load_articles()
    lock = Article(slug="distributed-lock-lease", title="Distributed lock leases", category="state",
                   keywords=["lock"], symptoms=[], causes=[], steps=[],
                   body="How the distributed lock API's lease works with a lock.redis component.")
    monkeypatch.setattr(dapr_apis, "load_articles", lambda: {**known, lock.slug: lock})
    uncovered_apis.cache_clear()
    try:
        assert "distributed lock" not in uncovered_apis()
        assert named_uncovered_api(LOCK_TICKET) is None
    finally:
        monkeypatch.undo()
        uncovered_apis.cache_clear()
    assert named_uncovered_api(LOCK_TICKET) == "distributed lock"


def test_a_ticket_about_an_uncovered_api_goes_to_a_person_though_it_reads_like_dapr():
    scope = assess_scope(LOCK_TICKET)
    assert scope.score >= SCOPE_THRESHOLD  # the score alone would keep it
    assert not scope.in_scope
    assert scope.reason == "the ticket is about the distributed lock API, which no knowledge-base article covers"
    assert scope.signals[-1] == "Dapr API no article covers: distributed lock"


def test_an_api_is_named_by_its_component_type_or_its_route_too():
    assert named_uncovered_api("GET /v1.0/configuration/flags on our configuration.redis component") == "configuration"
    assert named_uncovered_api("POST /v1.0-alpha1/lock/lockstore returns success false") == "distributed lock"
    assert named_uncovered_api("a crypto.azure.keyvault component for our keys") == "cryptography"


def test_covered_apis_and_plain_words_do_not_fire():
    for description in ("Our configuration.yaml sets the tracing sampling rate to 1.",
                        "The package-lock.json changed and the build broke.",
                        "The browser's crypto.subtle API rejects our key.",
                        "Our pub/sub subscriber gets every message twice after a redeploy.",
                        "The state store lock file on the build agent is stale",  # no lock API
                        "Our actor reminders stopped firing after the upgrade to 1.14.",
                        "We encrypt the payload ourselves before publishing; the subscriber cannot decode it."):
        assert named_uncovered_api(description) is None, description
