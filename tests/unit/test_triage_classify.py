import pytest

from app.triage.classify import assess_priority, classify_ticket, without_environment


@pytest.mark.parametrize(("description", "category", "slug"), [
    ("Sentry logs that the issuer certificate is expired and sidecars cannot get identities.",
     "security", "mtls-cert-expiry"),
    ("Kafka subscriber gets the same order event delivered three times.", "pubsub", "pubsub-duplicates"),
    ("Reminders stopped firing after the scheduler pods lost their volume.", "workflow",
     "scheduler-unreachable"),
    ("The daprd container is OOMKilled under load.", "deployment", "sidecar-resources"),
    ("Prometheus cannot scrape the sidecar on port 9090.", "observability", "metrics-prometheus"),
    ("Redis state store init fails with WRONGPASS.", "state", "state-store-connection"),
    ("The conversation component rejects our Anthropic key.", "ai", "conversation-api-setup"),
])
def test_category_is_the_best_matching_topic(description, category, slug):
    result = classify_ticket(description)
    assert result.category == category
    assert result.matched_slugs[0] == slug
    assert len(result.matched_slugs) <= 3
    assert result.reasons[0] == f"category {category}: best knowledge-base match is {slug}"


def test_a_ticket_with_two_problems_takes_the_category_of_the_one_with_more_impact():
    # The metrics wording matches more strongly, but the workflows down in production is the
    # problem with more impact (rubric).
    description = ("Workflow instances in production all sit in RUNNING because no worker picks "
                   "them up, and on top of that Prometheus cannot scrape the sidecar metrics on "
                   "port 9090 in staging.")
    result = classify_ticket(description)
    assert result.matched_slugs[0] == "metrics-prometheus"
    assert result.category == "workflow"
    assert "workflow-stuck" in result.reasons[0]


def test_no_match_is_out_of_scope_and_says_so():
    result = classify_ticket("qwxzv plmokn")
    assert result.category == "other"
    assert result.matched_slugs == []
    assert not result.in_scope
    assert "no knowledge-base article matches" in result.reasons[0]


@pytest.mark.parametrize("description", [
    "Can you send us your SOC 2 report and the data processing agreement for procurement?",
    "How do I change the billing address on our account?",
    "Our MongoDB cluster is down in production; we talk to it directly, no Dapr in this path.",
])
def test_tickets_not_about_dapr_are_category_other(description):
    result = classify_ticket(description)
    assert result.category == "other"
    assert not result.in_scope
    assert any(signal.startswith("category other:") for signal in result.signals)


def test_signals_say_what_set_priority_and_category():
    result = classify_ticket("Production checkout is down: the sidecar gets connection refused "
                             "from the app on port 5000.")
    assert result.priority == "critical"
    assert result.in_scope
    assert "production impact: 'is down'" in result.signals
    category_signal = next(s for s in result.signals if s.startswith("category connectivity:"))
    assert "sidecar" in category_signal and "refused" in category_signal
    assert any(s.startswith("retrieval: best article score") for s in result.signals)


def test_a_dapr_sidecar_that_is_missing_is_not_dapr_being_absent():
    result = classify_ticket("Pods in staging start without a Dapr sidecar although the "
                             "annotations are set.")
    assert result.in_scope and result.category == "deployment"


def test_requests_report_no_failure():
    priority, reasons = assess_priority("We'd like to see which workflows failed last week.")
    assert priority == "low"


def test_running_out_of_memory_is_a_failure():
    assert assess_priority("The sidecar keeps running out of memory in staging.")[0] == "medium"


@pytest.mark.parametrize(("description", "priority"), [
    # critical: production down or losing data
    ("Production is down: all requests to the API gateway fail with 503 since the upgrade.",
     "critical"),
    ("Our live payment system is losing messages after the broker failover; prod orders vanish.",
     "critical"),
    # high: production degraded, security exposure, release blocked
    ("In production about 10% of invocations time out; the rest work.", "high"),
    ("The sidecar log prints our database password in clear text, secrets are exposed.", "high"),
    ("The metadata endpoint is reachable from the internet without authentication.", "high"),
    ("We need to rotate the Sentry root certificate without downtime in production.", "low"),
    ("Injection fails in the new cluster and this blocks our release planned for Friday.", "high"),
    # medium: outside production, or production with a workaround
    ("Workflow activities never run in the staging cluster.", "medium"),
    ("Component init error on a developer laptop.", "medium"),
    ("Subscriptions fail in production, we restart the pods manually as a workaround.", "medium"),
    ("Every call returns 401 in our pre-prod environment.", "medium"),
    ("This is not production yet, but all calls fail with connection refused.", "medium"),
    ("It works in staging but not in production: some calls there fail with 503.", "high"),
    ("The cron binding fires at the wrong hour.", "medium"),
    # low: questions, how-tos, requests with no failure reported
    ("How do I enable JSON logs for the sidecar?", "low"),
    ("We are not in production yet. Which state stores support transactions?", "low"),
    ("Is it possible to use Consul for name resolution?", "low"),
    ("We want to move to the Jobs API. Which version introduced it?", "low"),
    ("How can we make sure an event is never lost when the database write fails?", "low"),
    ("We need retries so that callers never see a transient error. What do you recommend?", "low"),
])
def test_the_rules_follow_the_rubric(description, priority):
    assert assess_priority(description)[0] == priority


def test_failure_words_inside_a_question_do_not_raise_priority():
    priority, reasons = assess_priority("What happens to messages that fail processing forever?")
    assert priority == "low"
    assert reasons[-1] == "no failure reported: a question or how-to"


def test_reasons_name_the_environment_and_the_deciding_cue():
    priority, reasons = assess_priority("Everything is down in production since 9:00.")
    assert priority == "critical"
    assert reasons[0] == "environment: production ('production')"
    assert reasons[1] == "production down or losing data ('Everything is down')"


def test_unknown_environment_is_not_treated_as_production():
    priority, reasons = assess_priority("Invocation fails with ERR_DIRECT_INVOKE.")
    assert priority == "medium"
    assert reasons[0] == "environment: not stated, treated as non-production"


def test_temporal_every_is_not_an_outage():
    assert assess_priority("In production the sidecar restarts every few hours.")[0] == "high"


def test_classification_is_deterministic():
    description = "Pods show 1/1 containers in production and no sidecar is injected."
    assert classify_ticket(description) == classify_ticket(description)


def test_environment_cues_are_removed_from_the_text():
    # Scope weighs what a ticket is about; where it happens is the priority's business.
    assert without_environment("It fails in production and on my laptop.").split() == [
        "It", "fails", "in", "and", "on", "my", "."]
    # With the noun the cue qualifies; the same noun elsewhere stays.
    assert without_environment("Nothing runs in the test environment or on our dev machines.").split() == [
        "Nothing", "runs", "in", "the", "or", "on", "our", "."]
    assert "environment" in without_environment("The environment variable is unset in staging.")


@pytest.mark.parametrize(("description", "priority"), [
    # A failure reported before the sentence turns into a question still counts.
    ("`dapr init` on the build box fails with a TLS handshake timeout, is there a way to install "
     "it without internet access?", "medium"),
    ("The sidecar in our test cluster exits with code 1 - how do we read why?", "medium"),
    # A question from its first word reports nothing.
    ("How do we stop the sidecar from failing when the app is slow to start?", "low"),
])
def test_a_failure_reported_before_the_question_counts(description, priority):
    assert assess_priority(description)[0] == priority


@pytest.mark.parametrize("description", [
    "Our production certificate rotation is scheduled next month. Nothing is broken yet; what is the order of steps?",
    "In production no data was lost during the failover test, we only want to know which settings to review.",
])
def test_a_denied_failure_is_not_a_failure(description):
    assert assess_priority(description)[0] == "low"


@pytest.mark.parametrize("description", [
    "Since the upgrade every order service call in the production cluster now fails with deadline exceeded.",
    "Checkout in production is completely stopped since this morning.",
    "Bindings in production are erroring since the redeploy, for every tenant.",
    "In production not a single message gets delivered to the shipping subscriber.",
    "Production: none of our workflow activities ever executes after the redeploy.",
    # An error code answered to every call; the customer's own customers kept from paying.
    "In production every call from checkout to payments returns ERR_DIRECT_INVOKE since this morning.",
    "The payments app in production cannot be reached through service invocation. Customers cannot pay.",
])
def test_all_of_production_failing_is_critical(description):
    assert assess_priority(description)[0] == "critical"


def test_production_as_a_worry_is_not_the_place_of_the_failure():
    priority, reasons = assess_priority(
        "Saves fail with an etag mismatch now and then. Only in staging so far, we are worried about prod.")
    assert priority == "medium"
    assert reasons[0].startswith("environment: not production")


def test_a_production_failure_that_does_not_hurt_yet_is_medium():
    assert assess_priority("In production about 2% of publishes fail; we retry in code for now, "
                           "so nothing is lost.")[0] == "medium"
    assert assess_priority("Production still works, but the scheduler logs errors every minute.")[0] == "medium"


def test_a_production_risk_with_nothing_broken_is_a_question():
    # The rubric rates what is failing: a certificate that expires in days, nothing broken yet,
    # is a how-to until it fails.
    assert assess_priority("The Dapr root certificate on our production cluster expires in 4 days. "
                           "Nothing is broken yet; how do we rotate it?")[0] == "low"


def test_an_out_of_scope_failure_outside_production_is_a_request_for_a_person():
    result = classify_ticket("We were billed twice for the support renewal; the finance team cannot "
                             "reconcile the invoices. Please refund one.")
    assert result.category == "other"
    assert result.priority == "low"


def test_an_out_of_scope_outage_in_production_keeps_its_priority():
    result = classify_ticket("Our MySQL primary in production is down and every query fails. "
                             "MySQL is accessed directly, Dapr is not involved.")
    assert result.category == "other"
    assert result.priority == "critical"


@pytest.mark.parametrize(("description", "priority"), [
    # Production said in other words.
    ("URGENT, live env: every call to the cart service through the sidecar fails since 02:00.", "critical"),
    ("Calls through the sidecar on our customer-facing search API got slow since Tuesday.", "high"),
    # Chat style without apostrophes still negates.
    ("app on laptop A cant invoke the app on laptop B by app id", "medium"),
    # "no" names something missing only when something expected is missing.
    ("Three on-prem VMs, no Kubernetes. Which name resolution should we use?", "low"),
    ("Pods in the staging cluster start with no daprd container at all.", "medium"),
    # A count's "each" is not "each request".
    ("Our prod go-live is blocked: the operator pods crash, three replicas each, and the log ends with 'leader election lost'.", "high"),
    # Said to be partial: degraded, not down.
    ("In production every POST /reserve returns 403 since the new Configuration, so checkout is half broken.", "high"),
    # Everything in production failing, said as a count of zero.
    ("Since the release NO orders are getting fulfilled in production.", "critical"),
    # Anything can read everything: a security exposure.
    ("In prod any app in the shared namespace can read every secret from the secret store.", "high"),
])
def test_priority_reads_the_rubric_however_it_is_written(description, priority):
    assert assess_priority(description)[0] == priority


@pytest.mark.parametrize(("description", "priority"), [
    # Not in production yet, however said: a failure there is a functional problem (medium).
    ("The sidecar keeps returning 500 from the state API, not live yet, still testing in our cluster.", "medium"),
    ("We haven't deployed it to production yet but publish calls time out against the Redis pubsub.", "medium"),
    # Every request failing in production is an outage, with the quantifier after the failure.
    ("Our prod checkout answers 503 for every call since the sidecar upgrade at noon.", "critical"),
    # Nothing moves in production: no timer fires, nothing ships.
    ("In production no scheduled reminders have fired since the scheduler disk filled up; nothing moves.",
     "critical"),
    # A job that restarts things on a schedule keeps production going: a workaround.
    ("The sidecar leaks memory in prod; a script that bounces the pods every hour keeps it alive.", "medium"),
    ("Sidecar OOMKilled in prod every day, but no customer-visible errors so far thanks to retries.", "medium"),
])
def test_environment_outage_and_workaround_said_in_other_words(description, priority):
    assert assess_priority(description)[0] == priority


@pytest.mark.parametrize(("description", "priority"), [
    # A declared top severity, or a public site that is down, is production.
    ("Sev-1: every payment call through the sidecar fails with deadline exceeded since noon.", "critical"),
    ("After the config change the webshop is completely down, the state API answers 500 for every read.",
     "critical"),
    # "temporarily" is a workaround only when it names a mitigating step.
    ("Actor calls fail in production with a placement timeout. Also, how do we set debug logs temporarily?",
     "high"),
    ("Actor calls fail in production with a placement timeout; we temporarily pinned all actors to one pod.",
     "medium"),
    # Service restored by a step of theirs: a production problem with a workaround.
    ("The binding broke our prod pods at startup. We removed the component, so the API is back; can the "
     "sidecar start without it?", "medium"),
    # Errors the customer says it does not see are no failure: a question.
    ("Is it safe to call datetime.now() inside a workflow? Not seeing any errors, just want to be sure.", "low"),
    # A paragraph ends a sentence: a failure before a question on its own line still counts.
    ("In our dev cluster every invocation of the quote service fails and daprd logs\n\n"
     "error invoking app channel: connection reset\n\nAny idea?", "medium"),
])
def test_severity_workaround_and_paragraphs(description, priority):
    assert assess_priority(description)[0] == priority


@pytest.mark.parametrize(("description", "priority"), [
    # The customer's own customers at work say production, with no environment named.
    ("Since the token rotation all customer traffic through the sidecar is rejected with 401.", "critical"),
    ("Every visitor to our web store gets an error page since the state store password changed.", "critical"),
    # Part of what they do failing is a degradation.
    ("Some visitors get a 500 from the cart since the state store failover.", "high"),
    ("Customer payments are delayed by minutes since the pubsub broker upgrade.", "high"),
    # Nobody can do the thing: an outage, however said.
    ("In production no customer can sign in since the invocation ACL change: calls get 403.", "critical"),
    ("Our shop has not been able to take a single order since the sidecars went into CrashLoopBackOff "
     "this morning; customers see an error page.", "critical"),
    ("No customer payment has gone through since 1 am: the services refuse each other's certificates.",
     "critical"),
    # The same words about a test system stay where they are.
    ("In our staging cluster the sidecar rejects every call with 401 after the token rotation.", "medium"),
])
def test_production_said_by_the_customers_it_serves(description, priority):
    assert assess_priority(description)[0] == priority


# Impact said in other words: the business hurt where no environment is named, a share or the rest
# still working, a service restored by the customer, a frozen release, access that should not be,
# requests, conditions and warnings, repetition, a store near its limit, stopgaps, posted secrets.
@pytest.mark.parametrize(("description", "priority"), [
    # No environment named, but the business is hurt: that is production.
    ("URGENT: every call to the inventory sidecar returns 503 since the certificate rotation.", "critical"),
    ("All messages to the billing topic fail with a timeout and we are losing money by the hour.", "critical"),
    ("The sidecar refuses every connection from the app; please call us right away.", "critical"),
    # Said not to be urgent, or no impact language: not production.
    ("Not urgent: every call to the inventory sidecar returns 503 on my branch build.", "medium"),
    ("Every call to the inventory sidecar returns 503 since the certificate rotation.", "medium"),
    # A share of production failing, or one feature while the rest works, is a degradation.
    ("In production one in ten checkout calls fails with a timeout from the sidecar.", "high"),
    ("In production 20% of publishes fail with 500, everything else is fine.", "high"),
    ("In production the reports service is completely down; the rest of the platform is working normally.",
     "high"),
    # Production restored by their own step: a production problem with a workaround.
    ("The sidecar crashed on startup in production, so we removed the component to get the pods running "
     "again. What should the component look like?", "medium"),
    # A release held back, a secret readable by an app that should not read it.
    ("The change board froze our release to production until the SDK and runtime versions match.", "high"),
    ("The analytics app has no business reading the payments secret, but its sidecar returns it.", "high"),
    ("Not a single customer has managed to check out since the deploy in production: the cart sidecar "
     "returns 500.", "critical"),
    # "neither of them in production" is not production.
    ("Two problems, neither of them in production: the sidecar refuses every call with 401.", "medium"),
    # A lab is not production.
    ("On our developer lab machines `dapr init` fails to download the binaries.", "medium"),
    # Trying something by hand is a test, not a workaround; doing the work by hand is one.
    ("In production the daprd container is OOMKilled every hour; its /healthz answers when I call it by hand.",
     "high"),
    ("In production the subscriber drops a third of the messages; we replay them by hand for now.", "medium"),
    # Any pod reading what it should not, without credentials, is an exposure.
    ("From any pod in the cluster our testers could curl the state API and read customer records.", "high"),
    ("The state API answers from outside the namespace without any credentials.", "high"),
    # What follows a request is still reported.
    ("In production the sidecars refuse the app's calls. Please help fast, we are losing orders every minute.",
     "critical"),
    # A condition, a warning heard and "every now and then" report no outage or failure.
    ("Is there a way to reload a component without restarts? If it doesn't exist, take this as a feature request.",
     "low"),
    ("We are designing a long-running workflow. A colleague warned us its history would grow forever. "
     "What is the pattern?", "low"),
    ("In production every now and then one replica fails with an etag mismatch; we added a retry and it is "
     "under control.", "medium"),
    # An opening condition with no comma runs into its main clause: the failure there counts.
    ("In our test cluster if the approval comes late the raise call returns success and nothing happens.",
     "medium"),
    # Outages said other ways.
    ("In production the shop gives error 500 to every customer since the sidecars went missing.", "critical"),
    ("In production the failing binding takes the entire gateway down and zero traffic is being served.",
     "critical"),
    # Something repeating is a failure.
    ("In staging the sidecar keeps printing 'waiting for application to listen on port 3000'.", "medium"),
    # A store near its limit in production, cleaned by a nightly script: a problem with a workaround.
    ("The Redis behind our workflows in production is at 85% memory; a script that deletes old keys runs "
     "every night. What is the supported cleanup?", "medium"),
    # A store that keeps growing, asked about: a how-to (as the development set labels it).
    ("Our actor state store keeps growing with keys of completed workflows. How do we clean them up?", "low"),
    # A stopgap that holds is a workaround; "holding up the release" is not.
    ("In production the consumer applies some events twice; a dedup table in front of it is holding for now.",
     "medium"),
    ("In production the summary feature fails for some tenants. This is holding up their onboarding.", "high"),
    # A secret posted where it should not be is an exposure.
    ("Yesterday an engineer attached a .env file with live access keys to a ticket; please delete it.", "high"),
    # What a pen test found reachable is an exposure.
    ("During a pen test the public shop app could call the admin route of the payments app in production.", "high"),
    # Nothing served, every pod crashing: an outage; one feature down while everything else works: degraded.
    ("In prod every pod in the namespace crashloops on a component and none of our services are serving traffic.",
     "critical"),
    ("In production every Conversation API call fails with 401; everything else in the helpdesk works.", "high"),
    # A hypothetical is no report.
    ("Design question: if the pod dies between the save and the publish we'd lose the event. Is there an outbox?",
     "low"),
    # A workaround in production says there is a problem, however it is told.
    ("The workflow store grows 5 GB a day. Production is fine because a nightly job deletes old rows; we want a "
     "supported way.", "medium"),
    # Not rolled out to production yet: outside production.
    ("In staging the new access policy makes calls to the renderer fail. Production doesn't have this policy yet.",
     "medium"),
    # Someone gone who can still get in is an exposure.
    ("A contractor who left last month still has an active login to the portal; please revoke it.", "high"),
    ("Someone who left the team in May can still log in to the console and see every ticket.", "high"),
    # Production not set up yet; a cluster with nothing on it yet is not down.
    ("Grafana shows every sidecar target DOWN in staging. Production dashboards aren't set up yet.", "medium"),
    ("Our new production cluster goes live Friday and this is blocking us: the operator crashloops. "
     "Nothing runs on this cluster yet.", "high"),
    # The rest of production working is a partial failure, not a production unaffected.
    ("In production the nightly cron binding has not fired since Friday. Everything else in production is working.",
     "high"),
])
def test_impact_and_its_absence_read_however_they_are_said(description, priority):
    assert assess_priority(description)[0] == priority


@pytest.mark.parametrize(("description", "priority"), [
    # "Nothing urgent" is no business impact; a ticket called a how-to is the rubric's low.
    ("Just a how-to, nothing urgent: where do we set the sampling rate so spans from the workers show up?", "low"),
    ("Only a quick question: we see metrics from the gateway but nothing from the sidecars, is scraping on?", "low"),
    # "Not production." said as a fragment places the failure outside production.
    ("The orders service calls billing through its sidecar and always gets 404 from our customers portal. "
     "Not production.", "medium"),
    # The adverb after the verb, and the rubric's "most requests fail".
    ("In production the order import has stopped completely since noon.", "critical"),
    ("Production checkout is failing for most users since the sale began.", "critical"),
    ("In production most calls to the pricing service time out since the upgrade.", "critical"),
    # Losing data, with a qualifier between.
    ("Production is losing customer data: sessions are emptied at random since this morning.", "critical"),
    # A temporary thing of theirs in place is a workaround; a step by hand that changed nothing is not.
    ("In production some receipts go out twice; we put a temporary dedup table in front of the mailer.", "medium"),
    ("Everything in our production billing namespace is down; we deleted the pods by hand with no change.",
     "critical"),
    # Going around the runtime is a workaround, not bypassing a control; a control bypassed is an exposure.
    ("In production uploads over 4 MB fail, so the client now sends them to storage directly, bypassing Dapr.",
     "medium"),
    ("We'd rather not bypass Dapr with a raw producer: how do we publish bare JSON from our test service?", "low"),
    ("Any pod in the cluster can bypass the access control policy by calling the app port directly.", "high"),
    ("A consultant who left us in June still has admin access to the dashboard and can read every ticket.", "high"),
    # A second problem's "only in dev" does not take production from the first.
    ("Partial production outage: every refund fails with 403 since the new policy. Unrelated and only in our dev "
     "environment: a new app cannot find the state store.", "high"),
    # A production go-live held up by what fails in pre-prod: the rubric's blocked release.
    ("We're blocked on a production go-live on Thursday: in the pre-prod environment every workflow start "
     "fails with an internal error.", "high"),
    # Part of it works: the failure is a degradation.
    ("Most refunds go through, but a small share of them never reach the ledger in production.", "high"),
    ("In production the storefront itself works fine, but order confirmations have not been sent since noon.",
     "high"),
    ("In production events from the new publisher are handled fine, but every event from the legacy one is "
     "rejected by the subscriber.", "high"),
    ("Since the flash sale in production the sidecars are OOMKilled and most API requests fail.", "critical"),
    # Production elsewhere and fine: the failure is outside it.
    ("The staging search cluster is red since a node crashed. Prod uses a separate cluster and is fine.",
     "medium"),
    # An incident that is over: with their stopgap in place a workaround, without one a question.
    ("Post-incident follow-up (mitigated): in production 2% of writes were rejected with an etag mismatch; we "
     "shipped a retry loop as a stopgap. What is the right way to handle concurrent writes?", "medium"),
    ("Post-incident review, INC-12 (closed): last week a partner API went down and our calls through the "
     "sidecar piled up. Everything has been back to normal since. How do we declare a timeout and retries?",
     "low"),
])
def test_more_ways_the_rubric_s_definitions_are_said(description, priority):
    assert assess_priority(description)[0] == priority
