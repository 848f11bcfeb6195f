import time

import pytest

from app.knowledge.articles import CATEGORIES, TOPIC_CATEGORIES, load_articles, parse_article
from app.knowledge.search import SNIPPET_CHARS, KnowledgeSearch, analyze, get_knowledge_search


@pytest.fixture(scope="module")
def search() -> KnowledgeSearch:
    return get_knowledge_search()


def test_every_topic_has_one_article_in_its_category():
    articles = load_articles()
    assert sorted(articles) == sorted(TOPIC_CATEGORIES)
    assert len(articles) == 40
    for slug, article in articles.items():
        assert article.slug == slug
        assert article.category == TOPIC_CATEGORIES[slug]
        assert article.category in CATEGORIES


def test_articles_have_symptoms_causes_and_concrete_numbered_steps():
    for slug, article in load_articles().items():
        words = len(article.body.split())
        assert 230 <= words <= 480, (slug, words)
        assert len(article.symptoms) >= 2, slug
        assert len(article.causes) >= 2, slug
        assert len(article.steps) >= 4, slug
        # Resolution steps name commands, flags, annotations or fields, in code spans or blocks.
        assert sum("`" in step for step in article.steps) >= 3, slug
        assert len(article.keywords) >= 5, slug


def test_key_flags_and_fields_appear_in_the_right_articles():
    articles = load_articles()
    expectations = {
        "app-port-mismatch": ["dapr.io/app-port", "--app-port"],
        "actor-state-store-missing": ['actorStateStore'],
        "pubsub-raw-payload": ["rawPayload"],
        "pubsub-dead-letter": ["deadLetterTopic"],
        "mtls-cert-expiry": ["dapr mtls renew-certificate"],
        "placement-unreachable": ["--placement-host-address"],
        "scheduler-unreachable": ["--scheduler-host-address"],
        "max-body-size": ["dapr.io/max-body-size", "dapr.io/http-max-request-size"],
        "sidecar-resources": ["dapr.io/sidecar-memory-limit"],
    }
    for slug, needles in expectations.items():
        for needle in needles:
            assert needle in articles[slug].body, (slug, needle)


def test_steps_keep_their_code_blocks():
    steps = load_articles()["pubsub-dead-letter"].steps
    assert steps[0].startswith("Configure a dead-letter topic")
    assert "deadLetterTopic: orders-dead" in steps[0]
    assert "```yaml" in steps[0]


def test_parse_article_rejects_a_file_without_resolution():
    text = "---\ntitle: T\ncategory: state\nkeywords: a, b\n---\n## Symptoms\n- s\n## Likely causes\n- c\n"
    with pytest.raises(ValueError, match="Resolution"):
        parse_article("broken", text)


def test_analyze_splits_identifiers_and_keeps_them_joined():
    terms = analyze("actorStateStore ERR_DIRECT_INVOKE dapr.io/app-port k8s OOMKilled")
    assert {"actor", "state", "store", "actorstatestor"} <= set(terms)
    assert {"err", "direct", "invok", "errdirectinvok"} <= set(terms)
    assert {"app", "port", "kubernet", "oom"} <= set(terms)
    assert analyze("the and of") == []


def test_customers_names_for_dapr_concepts_read_as_the_articles_words():
    # The Dapr docs' own synonyms: an orchestration is a workflow, a message bus is pub/sub.
    assert analyze("orchestrations orchestrator") == analyze("workflows workflow")
    assert analyze("message bus")[-1] == analyze("pub/sub")[-1] == "pubsub"
    # A Kafka producer stays a producer: outside Dapr it is not a publisher.
    assert analyze("producer") != analyze("publisher")


def test_a_customers_word_for_workflows_finds_the_workflow_article_that_never_writes_it():
    # workflow-history-growth says "workflow" throughout and "orchestration" nowhere.
    found = {hit.slug for hit in get_knowledge_search().search("orchestrations", k=40)}
    assert "workflow-history-growth" in found


@pytest.mark.parametrize(("query", "slug"), [
    ("TLS handshake fails: x509: certificate has expired or is not yet valid", "mtls-cert-expiry"),
    ("daprd container OOMKilled, sidecar memory keeps climbing", "sidecar-resources"),
    ("how to mark a state store with actorStateStore for workflows", "actor-state-store-missing"),
    ("bind: address already in use on port 50001 when starting a second app", "port-conflicts"),
    ("consumer must accept plain messages that are not CloudEvents", "pubsub-raw-payload"),
    ("traces never show up in Jaeger via the OpenTelemetry collector", "tracing-setup"),
    ("sidecar returns 401 unauthorized, dapr-api-token header", "api-token-auth"),
    ("how do I configure the OpenAI key for the conversation component", "conversation-api-setup"),
])
def test_search_ranks_the_matching_article_first(search, query, slug):
    assert search.search(query, k=3)[0].slug == slug


def test_hits_are_ranked_complete_and_bounded(search):
    hits = search.search("pub/sub messages are delivered twice to my subscriber", k=4)
    assert len(hits) == 4
    assert len({hit.slug for hit in hits}) == 4
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert hits[0].slug == "pubsub-duplicates"
    assert hits[0].category == "pubsub"
    assert hits[0].title == load_articles()["pubsub-duplicates"].title
    for hit in hits:
        assert 0 < len(hit.snippet) <= SNIPPET_CHARS


def test_snippet_is_the_sentence_closest_to_the_query(search):
    hit = search.search("WRONGPASS invalid username-password pair", k=1)[0]
    assert hit.slug == "state-store-connection"
    assert "WRONGPASS" in hit.snippet


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "the of and"])
def test_empty_or_stopword_query_returns_nothing(search, query):
    assert search.search(query) == []


def test_unknown_terms_and_zero_k_return_nothing(search):
    assert search.search("qwxzv plmokn", k=5) == []
    assert search.search("placement", k=0) == []


def test_search_is_deterministic_and_cached(search):
    query = "workflow timers never fire"
    assert search.search(query) == search.search(query)
    assert get_knowledge_search() is search


def test_query_latency_is_far_below_50ms(search):
    query = ("Our production checkout service is down: every call through the sidecar fails "
             "with connection refused to the app on port 5000 since this morning's deploy.")
    search.search(query)
    started = time.perf_counter()
    for _ in range(200):
        search.search(query)
    assert (time.perf_counter() - started) / 200 < 0.01
