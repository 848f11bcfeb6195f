"""Offline, deterministic ticket triage: category from the knowledge base, priority from the rubric.

Category is the category of the best-matching knowledge-base topic (triage rubric); a ticket
with two problems takes the category of the one with more impact (`app.expert.problems`), not
that of whichever problem dominates the wording. Priority (`decide_priority`): the rules below
settle a ticket that meets one of the rubric's definitions outright; the rest, where how bad a
failure is or where it happens is a judgement, the priority model weighs (`ticket_model`). The
rules read the rubric's definitions from general cues in the wording:

- critical: production is down or losing data (all or most requests failing);
- high: production degraded or partly failing, a security exposure, or a production release blocked;
- medium: a functional problem outside production, or a production problem with a workaround;
- low: a question, how-to, feature request or documentation request with no failure reported.

Failure cues are only read from statements, not from questions: "how do we make sure we never
lose an event?" asks for advice, it does not report data loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel

from app.domain.triage import Priority
from app.knowledge.articles import OUT_OF_SCOPE_CATEGORY, load_articles
from app.knowledge.search import SearchHit, analyze, get_knowledge_search
from app.triage.ticket_model import load_model

MATCHES_KEPT = 3


class Classification(BaseModel):
    category: str
    priority: Priority
    matched_slugs: list[str]
    reasons: list[str]
    # Why, for an engineer: the cues that set the priority and the words that set the category.
    signals: list[str] = []
    top_score: float = 0.0  # BM25 score of the best-matching article
    in_scope: bool = True
    scope_score: float = 1.0
    scope_reason: str = ""


def _cues(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


_PRODUCTION = _cues(
    r"(?<!pre-)(?<!pre)(?<!non-)(?<!non)\bprod(uction)?\b",
    # Internal names: "prd-west", "prd:", "in live" (not "live reload", "live migration").
    r"\bprd\b", r"\b(in|on|into|to|from) live\b(?![ -](reload\w*|migrat\w*|mode|stream\w*|debug\w*|updates?|patch\w*"
    r"|preview\w*|chat|demo|view|data|tail\w*|share\w*|coding)\b)",
    r"\blive (\w+ ){0,2}(system|site|website|environment|env|cluster|traffic|service|platform|app|api"
    r"|storefront|shop|store|portal|database|db|data|customers?|users?|apps?|applications?|orders?|payments?"
    r"|transactions?)s?\b",
    r"\bgo-?live\b", r"\bcustomers\b",
    # A release that went out: "since release 2.3 went out this afternoon" (not one to staging).
    r"\b(release|version|deploy\w*|v?\d+(\.\d+)+)\b[^.;]{0,20}\b(went out|went live|shipped|rolled out)\b"
    r"(?! to (staging|dev|test|qa|uat)\b)",
    r"\b(since|after) (yesterday's|today's|this morning's|last night's|friday's|the last|our last|last week's) "
    r"(release|rollout)\b",
    # A hotfix patches what runs: "after this morning's hotfix every claim workflow fails".
    r"\bhot-?fix(es|ed)?\b(?![^.;]{0,30}\b(staging|dev|test|qa|uat)\b)", r"\b(our|the|paying|real|end) users\b", r"\boutage\b",
    r"\b(customer|user|public)-facing\b",
    # A declared top severity is a production incident: "SEV1:", "Sev-0", "severity 1", "P1 incident".
    r"\bsev(erity)?[- ]?[01]\b", r"\bp[01] (incident|outage|issue)\b", r"^\s*p[01]\b\s*[-:]",
    # What the public reaches is production: "the site is effectively down".
    r"\b(site|website|web ?shop|storefront|shop|online store)( is| was| went)( \w+)? (down|offline)\b",
    # The customer's own customers at work: "all customer traffic", "no customer payment", "every
    # visitor of our web store". Nobody says that of a staging system.
    r"\b(customer|visitor|shopper)s?'? (traffic|payments?|orders?|transactions?|checkouts?|logins?|purchases?)\b",
    r"\buser traffic\b", r"\b(visitors|shoppers?)\b",
    r"\b(every|each|any|no|not a single|not one) (customer|visitor|shopper)\b",
)
_NON_PRODUCTION = _cues(
    # Not a pen test's finding, which is about whatever was tested.
    r"\b(staging|stage environment|dev|development|(?<!pen )(?<!pen-)test|testing|qa|uat|sandbox|demo)\b",
    r"\b(pre|non)-?prod(uction)?\b", r"\blocally\b", r"\b(on|in) local\b",
    r"\blocal (dev\w*|setup|machine|environment|env|cluster|run|test\w*|docker|kind|minikube)\b",
    r"\b(laptop|macbook|workstation)\b", r"\b(dev(eloper)? |test |home )?lab( machines?| environment| cluster)?\b",
    r"\bmy (machine|computer|pc)\b", r"\b(minikube|kind cluster|docker desktop)\b",
    r"\b(proof of concept|poc|prototype)\b", r"\bbuild agents?\b", r"\bci (pipeline|runner|job)s?\b",
)
# Where the ticket does not say where, the business being hurt says production: nobody writes
# "URGENT", "we are losing money" or "need help now" about a staging cluster. "Not urgent" is no cue.
_URGENT_IMPACT = _cues(
    r"(?<!not )(?<!not very )(?<!isn't )(?<!no )(?<!nothing )\burgent(ly)?\b", r"\basap\b", r"\bas soon as possible\b",
    r"(?<!not an )(?<!no )\bemergency\b",
    r"\b(help|call|fix|respond|answer)( \w+)? (now|immediately|right away|right now|asap)\b",
    r"\b(on|jump on) a call\b",
    r"\bneed (someone|somebody|a person|an engineer|help|you)( \w+){0,3} (now|immediately|right away|right now|asap|urgently)\b", r"\bplease (call|phone|ring) (us|me)\b",
    r"\b(losing|bleeding|costing|cost|lose|lost) (us )?(\w+ ){0,2}(money|revenue|sales|business|deals|bookings)\b",
    # Real money and real people: "real subscriptions are getting cancelled", "~900 employees won't be paid".
    r"\breal (customers?|users?|subscriptions?|payments?|orders?|money|traffic|shoppers?)\b",
    r"\b(employees|staff|customers|members|merchants)\b[^.;]{0,20}\b(won't|will not|can't|cannot) (be|get) paid\b",
    r"\brevenue\b", r"\bpaid orders\b",
    # The people of the customer's business kept from their work, or its own customers from theirs:
    # "loan officers at all 14 branches have been idle", "members can't redeem vouchers", "brokers
    # are complaining they lose deals" (not the customer's engineers: "our devs can't deploy").
    # Roles that name only the business: not "clients" (a gRPC client), "agents" (build or AI agents),
    # "members" (team members) or "finance" (a billing question's "finance team cannot reconcile").
    r"\b(staff|employees|officers|brokers|cashiers|drivers|couriers|pickers|nurses|doctors|tellers"
    r"|guests|patients|passengers|shoppers|buyers|merchants|hotels|stores|shops|branches"
    r"|warehouses?)\b[^.;]{0,40}\b(can't|cannot|can not|couldn't|unable to|idle|ha(ve|s) nothing to"
    r"|are complaining|complain\w*|los(e|ing) (deals|sales|orders|bookings|customers))\b",
    r"\bpublic (api|apis|website|site|endpoints?)\b", r"\bsla (penalt\w*|breach\w*)\b",
    r"\b(complaints|calls) (are )?(piling up|pouring in|flooding in)\b",
    # A count of the business's own work held up: "Around 4,000 orders are queued".
    r"\b\d[\d,.]*k? (orders|payments|shipments|parcels|claims|settlements|invoices|bookings)\b[^.;]{0,30}"
    r"\b(queued|stuck|waiting|frozen|lost|pending|piling up|backed up)\b",
)
# "This is not production yet"; but "works in staging, not in production" is about production.
_NEGATED_PRODUCTION = _cues(
    r"\b(is|are|was|were|'s|'re) not (yet )?(in |on |a )?prod(uction)?\b",
    r"\b(isn't|aren't|wasn't) (yet )?(in |on |a )?prod(uction)?\b",
    r"\bbefore (going (to|in|into) )?prod(uction)?\b", r"\boutside( of)? prod(uction)?\b",
    # Not there yet, however said: "not in prod yet", "not live yet", "haven't shipped it to prod".
    r"\bnot (\w+ )?(in|on|into|to) prod(uction)? yet\b", r"\bnot yet (in|on|into|to|live in) prod(uction)?\b",
    r"\bnot (live|in prod(uction)?) yet\b",
    r"\bnothing (is )?(in|on|live in) prod(uction)? yet\b",
    r"\b(neither|none) of (them|these|those|which|it)( is| are)? (in|on) prod(uction)?\b",
    r"\b(haven't|have not|hasn't|has not|not) (yet )?(gone|been|shipped|deployed|released|rolled out|pushed)"
    r"( (it|this|them|that))? (to|in|into) prod(uction)?\b",
    # Production as a worry, not as the place: "only in staging so far, but nervous about prod".
    r"\b(nervous|worried|concerned|afraid|scared|anxious) (about|for|before) (\w+ )?prod(uction)?\b",
    r"\bonly (happens |seen |reproduces )?(in|on) (our )?(staging|dev|test|qa|uat|pre-?prod)\b",
    r"\b(staging|dev|test|qa|uat)( environment| cluster)? only\b",
    # Production said to be untouched by a problem seen elsewhere: "Staging ... Prod is not affected",
    # "Prod uses a separate cluster and is fine".
    r"\bprod(uction)? (uses|has|runs on|is on|is in|lives in|sits in|has got) (a |an |its own )?(separate|different"
    r"|another|own)\b",
    r"\bprod(uction)? (is|was|isn't|wasn't) (not |un)?(affected|impacted|touched)\b",
    # Nothing shipped anywhere: "nothing is deployed anywhere yet, this is my local dev setup".
    r"\b(nothing|none of (it|this|them)) (is |has been )?(deployed|live|running|released) anywhere( yet)?\b",
    r"\bnot (deployed|live|running|released) anywhere( yet)?\b",
    # Said in passing: "Load test in our perf environment (not prod)", "... namespaces. Not production."
    r"(?:^|[.;!?:]\s+)(not|no|never) (in |on )?prod(uction)?\s*(?:[.;!]|$)",
    r"\((not|no|never) (in |on )?prod(uction)?\)",
    # Production spared so far: "Production traffic is lower and hasn't hit this".
    r"\bprod(uction)?\b[^.;]{0,30}\b(hasn't|has not|haven't|have not) (hit|seen|had|reached|experienced) (this|it|that)\b",
    # Not rolled out there yet: "Production doesn't have this configuration yet".
    r"\bprod(uction)?\b (\w+ ){0,3}(doesn't|does not|don't|do not) (have|run|use|contain) (this|it|that|these|those"
    r"|the|them)\b[^.;]{0,40}\byet\b",
    # Not set up there yet: "Production dashboards aren't set up yet, this is the first environment".
    r"\bprod(uction)?\b (\w+ ){0,3}(isn't|aren't|is not|are not) (set up|deployed|live|built|configured|rolled out"
    r"|installed)( \w+)? yet\b",
    # A cluster or environment with nothing on it yet: "Nothing runs on this cluster yet".
    r"\bnothing (runs|is running|is live|is deployed|serves (\w+ )?traffic) (on|in|from) (this|the|that|it|our)\b"
    r"[^.;]{0,30}\byet\b",
)
_FAILURE = _cues(
    r"\bfail(?!over)\w*", r"\berr(or|ors|_\w+)?\b", r"\bexception\b", r"\bcrash\w*", r"\bpanic\w*",
    r"\brefus\w*", r"denied\b", r"\bunauthori[sz]ed\b", r"\bforbidden\b",
    # A status code, not a quantity ("400 GB", "500 messages", "404 ms"); "500 errors" is one.
    r"\b[45]\d\d\b(?!\s*(?:[kmgt]i?b|ms|%|(?!(?:errors|responses|codes|statuses)\b)[a-z]+s)\b)",
    r"\btime(d|s)? ?outs?\b", r"\bhang(s|ing)?\b", r"\bstuck\b", r"\bbroken\b", r"\bbr(oke|eaks|eaking)\b",
    r"\bnot (work\w*|\w+ing|found|called|delivered|received|triggered|fired|picked up)\b",
    # Negations describe misbehaviour ("doesn't start"), except about the customer's own setup
    # ("we don't use Kubernetes", "Dapr is not involved", "it is not deployed yet").
    r"\b(cannot|can't|cant|can not|unable to|won't|wont|doesn't|doesnt|don't|dont|didn't|didnt|isn't|isnt"
    r"|aren't|arent|wasn't|wasnt|hasn't|hasnt|haven't|havent|has not|have not|does not|do not"
    r"|did not|is not|are not|was not)\b(?! (yet )?(use|using|have|need|know|want|plan|care|involved|part of"
    r"|deployed|live|in production|released|shipped|built)\b)",
    # "nothing arrives" is a failure; "nothing deployed (yet)" is a project's state.
    r"\bnever\b", r"\bnothing\b(?! (is |has been |was )?(yet )?(deployed|live|in production|released|shipped"
    r"|built|running yet)\b)", r"\bno (\w+ )?(response|reply|replies|messages?|events?|data|output|logs?|traffic|connection|route|leader"
    r"|address|such|space|pollers?|subscribers?|consumers?|healthy|available|endpoints?|metrics|traces?"
    r"|spans?|instances?|pods?|sidecars?|actors?|containers?|workers?)\b", r"\bno longer\b",
    r"\bmissing\b", r"\b(lost|lose|losing|loss)\b", r"\bdrop(ped|s|ping)\b", r"\breject\w*",
    r"\bunavailable\b", r"\bunhealthy\b", r"\bunreachable\b", r"\boom\w*", r"\bkilled\b",
    r"\brestart(s|ing)\b", r"\bcrashloop\w*", r"\bexits?\b", r"\bdies\b", r"\bdied\b",
    r"\bstop(s|ped)\b", r"\bduplicat\w*", r"\btwice\b",
    r"\b(several|multiple|many|two|three|four|five|\d+) times\b", r"\binstead of\b",
    r"\bmore than once\b", r"\bwrong\b", r"\bincorrect\b", r"\bunexpected\w*", r"\bmismatch\w*",
    r"\bconflict\w*", r"\binvalid\b", r"\bexpired?\b", r"\bexceed\w*", r"\btoo (large|big|many)\b",
    r"\balready in use\b", r"\bdegraded\b", r"\bslow\w*\b", r"\bintermittent\w*", r"\bflaky\b",
    r"\bthrottl\w*", r"\bleak\w*", r"\bgarbage\b", r"\bdelayed\b", r"\boverwrit\w*",
    r"\bthrow(s|n|ing)?\b", r"\bempty\b", r"\bblank\b", r"\bunknown\b", r"\bunimplemented\b",
    r"\bnot implemented\b", r"\b(running|ran|runs) out of\b", r"\bout of (memory|disk|space)\b",
    r"\bforever\b", r"\bignor(e|es|ed|ing)\b",
    r"\bkeeps? (printing|logging|saying|showing|retrying|restarting|crashing|failing|timing out|waiting)\b",
    # A resource near its limit: "at 85% memory". (A store that "keeps growing" is a how-to until it hurts.)
    r"\b\d{2,3} ?% (of )?(its |the )?(memory|disk|cpu|capacity|full)\b", r"\bblock(s|ed|ing)? the\b", r"\bblows? up\b",
    r"\bblew up\b", r"\bdead\b", r"\bnon-?determinis\w*", r"\blag(ging)?\b",
    r"\b(arrive|arrives|arriving|are|is) (\S+ ){0,3}late\b",
    # Falling behind is degradation: "the consumers are hours behind".
    r"\b(falls?|fell|falling|lag\w*|seconds|minutes|hours|days) behind\b",
)
# Words that say the whole service is affected, not part of it.
_OUTAGE = _cues(
    r"\b(is|are|was|were|went|goes|going)( \w+)? down\b(?! (by |about |around |roughly )?~?\d)",
    r"\b(is|are|was|were|went|goes|going)( \w+)? offline\b",
    # What the public reaches, unreachable: "our public website and mobile API are unreachable".
    r"\b(website|site|apis?|storefront|shop|portal|checkout)\b[^.;]{0,30}\b(is|are|was|were|went|became) (unreachable"
    r"|inaccessible|unusable)\b",
    # Nothing can be written: "no writes are possible".
    r"\bno (\w+ ){0,2}(is|are) possible\b",
    r"\b(site|system|service|everything|prod|production) (is |was |went )?down\b",
    # The whole of a thing stopped: "our whole billing backend is stopped".
    r"\b(whole|entire) (\w+ ){0,3}(is|are|was|were|has|have)( been)? (stopped|down|dead|broken|offline|halted)\b",
    r"\boutage\b", r"(?<!without )(?<!no )(?<!zero )\bdowntime\b",
    r"\b(completely|entirely|totally|fully) (stopped|down|broken|unavailable|failing|dead|stuck|offline)\b",
    r"\b(stopped|down|broken|unavailable|failing|dead|stuck|offline|halted)( \w+)? (completely|entirely|totally|fully)\b",
    # The rubric's "most requests fail": "checkout is failing for most users", "most calls time out".
    r"\bmost (of (the|our) )?([\w-]+ )?(requests|calls|users|customers|orders|payments|messages|transactions|checkouts"
    r"|invocations|pods|instances|replicas)\b[^.;]{0,40}\b(fail\w*|stopped|down|broken|unavailable|rejected|refused"
    r"|errors?|stuck|can't|cannot|tim(e|es|ed|ing) ?out|5\d\d)\b",
    # "all calls fail", "every request is rejected"; not "fails every few hours" or "each time".
    # Not per occurrence: "each restart drops in-flight requests" says how often, not how much.
    r"\b(all|every|each)\b(?! (time|times|day|hour|minute|night|week|morning|few|other|now|so|restart|deploy"
    r"|deployment|release|rollout)s?\b)(?![,.;:)])"
    r"[^.;]{0,60}\b(fail\w*|stopped|down|broken|lost|unavailable|unreachable|rejected|refused|errors?|err_\w+|stuck|can't|cannot"
    r"|tim(e|es|ed|ing) ?out|hang\w*|crash\w*|5\d\d|40[13])\b",
    # The quantifier after the failure: "failing for all customers", "timing out, every single one".
    r"\b(fail\w*|down|broken|dead|unavailable|unreachable|reject\w*|refus\w*|erroring|errors?|tim(ed|ing) out|5\d\d)\b"
    r"[^.;]{0,60}\b((?<!not )(for|from) (all|every|everyone|everybody|most (of (the|our) )?(users|customers"
    r"|requests|calls|visitors|shoppers|clients|tenants))\b|every single one\b"
    r"|(on|for|with) (every|each)( single)? (request|call|message|order|payment|invocation|event)\b"
    r"|to (every|each|all)( single)? (customers?|users?|visitors?|shoppers?|callers?|clients?)\b)",
    # Turning all of them away: "the sidecar refuses every connection", "rejects all calls".
    r"\b(reject\w*|refus\w*|drop(s|ped|ping)|block(s|ed|ing)) (every|all|each)( single)? ([\w-]+ )?(requests?|calls?"
    r"|connections?|messages?|events?|invocations?|orders?|payments?|tunnels?|sessions?)\b",
    # Nothing gets through: "no payment is being processed", "not one activity runs".
    r"\b(none of|not (one|a single)|no)\b (\w+ ){1,5}(ever )?(is |are |gets? |getting |being |was |were |has |have "
    r"|had |been )*(runs?|running|executes?|works?|processed|processing|activated|delivered|started|arrives?|arriving"
    r"|goes through|gets through|going through|getting through|completes?|completing|shipping|moving|serving"
    r"|fulfilled|handled|consumed|received|served|completed|saved|written|fires?|fired|triggers?|triggered"
    r"|ships?|shipped|moves?|moved|progress(es|ed)?|proceeds?|(gone|got|went) through|placed|arrived)\b",
    # Nobody can do the thing: "no customer can log in", "we haven't been able to place a single order".
    r"\b(no|not a single|not one) (customer|user|visitor|shopper|one|body)s? (can|could|is able to|was able to"
    r"|(has |have |had )?managed to)\b",
    r"\bnobody (can|could|is able to)\b",
    # The customer's customers kept from the business: "Customers cannot pay".
    r"\b(customers|users|shoppers|visitors|buyers) (can't|cannot|can not|are unable to|are not able to) (pay|check ?out"
    r"|log ?in|sign ?in|order|buy|book|sign ?up|purchase)\b",
    r"\bnone (have|has|had|are|were|is|was)( been)? (\w+ )?(shipped|processed|delivered|completed|started|received"
    r"|handled|sent|paid|dispatched)\b",
    r"\b(haven't|have not|hasn't|has not|hadn't|had not) been able to (\w+ ){1,2}(a single|any)\b",
    r"\bnothing (\w+ )?(works|runs|moves|happens|progresses|proceeds|gets through|goes through|fires)\b",
    r"\bnothing (\w+ ){0,3}(is |was |has been |gets? )?(being )?(consum|process|deliver|arriv|receiv|publish|execut|reach)(ed|ing)\b",
    # Not one thing done: "fulfilment has not received a single message", "zero picks since 19:00",
    # "we cannot charge anybody".
    r"\b(not|never|hasn't|haven't|hadn't) (received|processed|delivered|handled|consumed|run|ran|executed|sent|shipped|served)"
    r" (a single|one|any)\b",
    r"\bzero (\w+ ){0,2}(since|today|so far|in the last)\b",
    r"\bzero (\w+ ){0,2}(is |are |was |were )?(being )?(served|processed|delivered|handled|getting through)\b",
    r"\b(takes?|took|taking|brings?|brought|bringing) (the |our )?(entire|whole) (\w+ ){0,2}down\b",
    r"\b(cannot|can't|can not|unable to) \w+ (anybody|anyone|any (customer|user|order|payment)s?)\b",
    r"\bno (requests?|calls?|orders?|messages?|traffic) (get|gets|go|goes) through\b",
    # All of it failing ("100% of checkouts fail"), not a resource full ("the PVC is 100% used").
    r"\b100 ?%(?! ?(used|full|utili[sz]\w*|usage|busy|cpu|memory|disk|capacity|of (its |the )?(memory|disk|cpu"
    r"|capacity|quota|space|volume|pvc)))",
)
_DATA_LOSS = _cues(
    r"\bdata loss\b",
    r"(?<!without )(?<!not )(?<!avoid )(?<!never )\b(losing|lost|lose) (\w+ )?(data|messages|events|orders|records|state)\b",
    r"\b(data|messages|events|orders|records|state|transactions|payments) (are|were|is|was|get|got)( being)?"
    r" (lost|deleted|corrupted|dropped)\b",
    r"\bcorrupt\w*",
)
# Said to be partial: the production failure is a degradation, not an outage.
_PARTIAL = _cues(
    r"\b(half|partly|partially|partial)\b",
    # A share of the traffic: "about a third of the applications", "one in five claims", "10% of requests".
    r"\b(a|one|two) (third|quarter|fifth|tenth)s?\b", r"\b(one|1) (in|out of) (\d+|two|three|four|five|ten)\b",
    r"(?<![\d.])([1-9]\d?) ?% of\b",
    # Down by a share, not down: "throughput is down ~40%".
    r"\b(down|dropped|fell|fallen) (by )?(~|about |around |roughly )?\d{1,2} ?%",
    # Part works: "Most approvals work, but a noticeable share ... never arrive", "Checkout itself works
    # fine", "Messages from the Dapr publisher are handled fine, but ...".
    r"\bmost (\w+ ){0,2}(work|works|succeed|succeeds|go through|get through|are fine|are processed|complete)\b",
    r"\ba (noticeable |small |large |significant |growing )?(share|portion|fraction|percentage|subset) of\b",
    r"\bitself (still )?(works|is working|is fine|runs)\b",
    r"\b(are|is) (handled|processed|delivered|served|received) (fine|normally|correctly|ok)\b",
    # Part still works: "browsing orders still works".
    r"\bstill (works?|working|fine|flowing|flows|serving)\b",
    # "orders themselves still go through", "payments still get processed".
    r"\bstill (go|goes|going|get|gets|getting) (through|processed|delivered)\b",
    r"\bstill (succeed|succeeds|complete|completes|arrive|arrives)\b",
    # The failure confined to a part: "only scheduled work is broken".
    r"\bonly (\w+ ){1,3}(is|are) (broken|failing|affected|impacted|down|stuck)\b",
    # A small share failing or a share of capacity left: "we get ~5% errors", "we're at ~40% capacity".
    r"(?<![\d.])~?[1-9]\d?(\.\d+)? ?% (errors?|error rate|failures?|failed|of (the )?(requests|calls|traffic))\b",
    r"\bat ~?[1-9]\d? ?% (of )?(capacity|throughput)\b",
    # The rest still works: "the rest of the platform is fine", "the other applications complete normally".
    r"\b(the )?(rest|others?)( of)?( \w+){0,3} (is|are|keeps?|stays?|stay|works?|completes?|complete|runs?|flows?|flowing)"
    r"( \w+)? (fine|normally|ok|working|as before|unaffected)\b",
    r"\b(everything|all) else( \w+){0,4} (is |still )?(fine|works|working|unaffected)\b",
    # The ordinary or the new ones still work: "while the normal pricing calls are fine", "New instances run fine".
    r"\b(normal|other|regular|remaining|new|newer) (\w+ ){0,2}(calls?|requests?|traffic|messages?|orders?|instances?"
    r"|workflows?|applications?|ones|pods?|services?) (are|is|still|run|runs|work|works|complete|completes)( \w+)?"
    r" (fine|ok|normally|working|unaffected)\b",
    # Some, not all: "failing for some instances, not for all".
    r"\bsome (\w+ ){0,2}(instances?|requests?|calls?|messages?|orders?|pods?|users?|customers?|tenants?|workflows?)"
    r",? (but )?not (for )?(all|every)\b",
    # What already runs carries on: "the 6 existing pods keep serving".
    r"\b(existing|old|older|running|current|remaining|other) (\w+ ){0,2}(pods?|instances?|replicas?|nodes?|services?"
    r"|callers?|clients?) (keep|keeps|continue|continues|are still|is still) (serving|running|working|to (serve|run|work))\b",
)
_WORKAROUND = _cues(
    # Not one denied: "no workaround yet", "without a workaround".
    r"(?<!no )(?<!without )(?<!without a )(?<!without any )(?<!not a )(?<!no known )(?<!no real )(?<!no good )"
    r"\bwork(ed|ing)? ?around\b", r"\bfor now we\b", r"\bstop-?gap\b",
    # A temporary measure, not a temporary wish ("put a sidecar on debug temporarily").
    r"\btemporary (fix|workaround|solution|patch|measure|mitigation)\b",
    # "They have put a temporary de-duplication table in front of the mailer".
    r"\b(put|added|built|set up|deployed|introduced|installed|wrote|placed|created)( in)?( in place)? (a |an )?"
    r"temporary [\w-]+",
    # Going around the runtime: "the client sends them straight to the storage account, bypassing Dapr".
    r"(?<!not )\bbypass(ing|ed) (dapr|the sidecar|daprd)\b",
    r"\b(we|i)( have)? temporarily \w+", r"\btemporarily (disabled|removed|bypassed|reverted|rerouted|switched"
    r"|scaled|turned off|pinned|rolled back)\b",
    # Service restored by a step of theirs: "we deleted that component, so the API is back".
    r"\bso (the |our )?(\w+ ){0,3}(is|are) back\b", r"\b(is|are) back (up|online|to normal)\b",
    # Trying is not yet a workaround: "trying to mitigate we applied a change (that did nothing)".
    r"(?<!trying to )(?<!tried to )(?<!try to )(?<!attempting to )(?<!attempt to )\bmitigat\w*", r"\brolled (\w+ ){0,3}back\b", r"\bmanually\b",
    # Restored and said so: "we rolled the policy back after 20 minutes and everything recovered".
    r"\b(everything|it|all|service|services|the service) (has |have )?(fully )?recovered\b", r"\b(is|it's|are|was) under control\b",
    # Doing the work by hand is a workaround; trying something by hand is a test ("when I call it by hand").
    r"(?<!call it )(?<!called it )(?<!calling it )(?<!try it )(?<!tried it )(?<!test it )(?<!tested it )"
    r"(?<!check it )(?<!checked it )(?<!run it )(?<!curl it )\bby hand\b"
    # Tried by hand, to no effect: "deleted pods by hand with no change".
    r"(?![^.;]{0,30}\b(no change|no effect|no luck|no difference|to no avail|without (any )?(success|luck|effect|change)"
    r"|didn't help|did not help|nothing changed|same result)\b)",
    # Restored by a step of theirs: "we deleted the binding to get the pods healthy again".
    r"(?<!trying )(?<!tried )(?<!try )(?<!attempting )(?<!attempted )\bto get (\w+ ){0,3}(healthy|running|working|up|back)( again)?\b",
    r"\b(everything|it|all) (runs|works|is running|is working) (again|now)\b",
    # Restored and holding since: "it came back and everything has worked since".
    r"\b(has|have) (worked|been (working|fine|stable|ok|healthy))( fine| normally)? (ever )?since\b",
    r"\bsince then,? (it|everything|all|things)( has| have|'s)? (been )?(worked|working|fine|stable|ok|healthy)\b",
    # A job that restarts or re-runs things on a schedule: "a CronJob that restarts the deployment at 3am".
    r"\b(cron ?jobs?|scripts?|scheduled (job|task)s?|jobs?)\b[^.;]{0,20}\b(that|which|to) (restart|bounce|re-?run"
    r"|retr|re-?deploy|recycle|delet|clean|purg|prun|trim|terminat|kill|re-?submit|re-?queue)\w*",
    r"\b(nightly|hourly|daily|weekly|scheduled|cron) (\w+ )?(jobs?|scripts?|tasks?) (restart|bounce|re-?run|re-?deploy"
    r"|recycle|delet|clean|purg|prun|trim|terminat|kill|re-?submit|re-?queue)\w*",
    # A stopgap that holds: "that's holding for now".
    # Their own fix took the impact away: "customers are no longer affected".
    r"\b(are|is|were|was) no longer (affected|impacted|seeing (it|this|them|any))\b",
    r"\bholding (up )?for now\b", r"\b(that|this|it)('s| is) holding\b(?! up)",
    r"(?<!after )(?<!since )(?<!when )(?<!once )\b(we|i)( currently| just| now)? (retry|re-?run|re-?submit"
    r"|re-?publish|re-?queue|restart|bounce)\w*\b[^.;]{0,40}\b(for now|every (night|day|morning|hour|few)"
    r"|each (night|day|morning|time)|nightly|daily|hourly|in code|by hand|so)\b",
)
_SECURITY_EXPOSURE = _cues(
    r"\bexpos(ed|ure|ing)\b", r"\bleak(ed|ing|s)? (secrets?|credentials?|keys?|tokens?|passwords?)\b",
    r"\b(secrets?|credentials?|keys?|tokens?|passwords?) (are |were |is |was )?"
    r"(leak\w*|exposed|visible|logged)\b",
    r"\bpublicly (accessible|reachable|readable)\b", r"\bwithout (any )?(auth\w*|credentials?|tokens?)\b",
    r"\bunauthenticated access\b", r"\banyone can\b",
    r"\b(any|every) (app|application|service|pod|user|tenant|team|namespace)s? (\w+ ){0,6}(can|could) (read|access"
    r"|see|call|invoke|get|fetch|curl)\b", r"\bvulnerab\w*", r"\bcve-\d+",
    r"\bsecurity (incident|breach|hole)\b",
    # Bypassing a control, not the runtime ("we'd rather not bypass Dapr with a raw producer").
    r"\bbypass\w*\b[^.;]{0,30}\b(auth\w*|acls?|access control|polic(y|ies)|mtls|tls|security|firewall|permissions?"
    r"|checks?|tokens?|logins?)\b",
    r"\b(auth\w*|acls?|access control|polic(y|ies)|mtls|security|permissions?|checks?) (is |are |can be |could be "
    r"|was |were )?bypass\w*",
    # A secret posted where it should not be: "attached a .env file that contains live access keys".
    r"\b(attached|posted|pasted|committed|pushed|uploaded)\b(?:[^.;]|\.(?=\S)){0,60}\b(access keys?|secrets?|credentials?"
    r"|passwords?|api keys?|tokens?)\b",
    # What a pen test or an audit found reachable: "during a pen test ... the storefront can call /admin/refund".
    r"\b(pen ?test\w*|penetration test\w*|audit\w*)\b[^.;]{0,80}\b(can|could) (call|read|access|reach|invoke|see|fetch)\b",
    # Access that should not be: "that app has no business reading it".
    r"\bhas no business (reading|accessing|seeing|calling)\b",
    r"\bshould(n't| not) (be able to )?(read|access|see|fetch|get) (\w+ ){0,3}(secrets?|passwords?|credentials?|keys?|tokens?)\b",
    # Someone gone who can still get in: "a contractor who left two weeks ago still has an active login".
    r"\b(left|leaving|departed|former|ex-\w+|offboarded|terminated|fired)\b[^.;]{0,60}\bstill (has|have|holds?)"
    r" (an? )?(\w+ ){0,2}(access|logins?|accounts?|credentials?|keys?|tokens?|passwords?|sessions?)\b",
    r"\b(left|leaving|departed|former|ex-\w+|offboarded|terminated|fired)\b[^.;]{0,60}\bcan still (log ?in|sign ?in"
    r"|access|get in|see|read)\b",
)
_RELEASE_BLOCKED = _cues(
    # Not Dapr's "building block" ("built on the conversation building block ... our Azure deployment").
    r"(?<!building )\bblock(s|ed|ing|er)?\b[^.;]{0,40}\b(release|go-?live|launch|rollout|cutover|deployment)\b",
    r"\b(release|go-?live|launch|rollout|cutover)\b[^.;]{0,30}\b(blocked|on hold|delayed|frozen)\b",
    r"\b(won't|will not|doesn't|does not) let us (ship|release|go live|deploy)\b",
    r"\b(froze|frozen|halted|held back)\b (\w+ ){0,2}(release|go-?live|launch|rollout)s?\b",
    r"\bcan(not|'t) (go live|release|launch|cut ?over)\b",
    # The date first, the block after: "goes live on Monday and this is now blocking us".
    r"\b(go(es)?[- ]live|launch(es)?|release|cut-?over|rollout)\b[^.;]{0,60}\bblock(s|ed|ing)\b (us|it|the|our)\b",
)
# The customer calls the ticket a question: "Just a how-to, nothing urgent". The rubric's low,
# whatever symptom the question describes ("we see traces from the gateway but nothing behind it").
_ONLY_A_QUESTION = _cues(
    r"\b(just|only|merely|simply|purely) (a |an )?(quick |general |simple |small |curiosity )?(question|how-?to"
    r"|documentation question|feature request|info(rmation)? request|request for (advice|guidance))\b",
)
# An incident that is over: what failed is past. With a stopgap of theirs in place it is the rubric's
# production problem with a workaround; without, a question of how to prevent it ("Post-incident
# review, INC-77 (closed): ... Everything has been back to normal since. How do we declare retries?").
_RESOLVED = _cues(
    r"\b(incident|outage|issue|problem|inc-?\d+)( (?!never\b|not\b)\w+)? (is |was |has been |got )?(now )?(closed|resolved)\b",
    r"\b(incident|outage|inc-?\d+) (is|was) (now )?over\b",
    r"\b(incident|inc-?\d+)[^.;]{0,20}\((closed|resolved|mitigated|over)\)",
    r"\b(post-?incident|post-?mortem|retrospective|pir)\b",
    r"\b(everything|it|all|things|service|services)( has| have|'s)? (been )?back to normal\b",
)
# A second problem set apart from the first: "Unrelated and only in our dev environment: ...". Where
# it happens is its own; it does not take production from the first.
_ASIDE = re.compile(
    r"(?:^|(?<=[.!?;]))\s*(?:unrelated|separately|also unrelated|p\.?\s?s\.?|side ?note|on an? (?:different|separate"
    r"|side|unrelated) note|a (?:separate|second|different|smaller|minor) (?:issue|problem|question|thing)"
    r"|(?:another|second) (?:issue|problem|question|thing))\b[^.!?;]*[.!?;]?",
    re.IGNORECASE)
# A sentence is a question when it ends with "?" or opens like one ("How do we ...").
_QUESTION_OPENING = re.compile(
    r"^(how|what|which|where|when|why|is|are|can|could|should|would|do|does|will)\b", re.IGNORECASE)
# Where a report turns into a question inside one sentence: "`dapr init` fails with a timeout, is
# there an offline way?" reports a failure before the comma and asks after it.
_QUESTION_TURN = re.compile(
    r"(?:[,;:]|\s[-\u2013\u2014])\s+(?:(?:and|but|so)\s+)?"
    r"(?=(?:how|what|which|where|when|why|is|are|can|could|should|would|do|does|will|any)\b)",
    re.IGNORECASE)
# Nothing lost, no impact: a denied failure, and a production that is not hurt (yet).
_NOTHING_LOST = (
    r"\bno (data|messages?|events?|orders?|records?) (\w+ )?(is |are |was |were |has been |have been )?lost\b",
    r"\bno (customer|user|production|real) impact\b",
    r"\bno (customer|user|client|end-user)[- ](visible|facing) (errors?|impact|issues?|problems?|failures?)\b",
)
# Statements that deny a failure or its impact: "nothing is broken yet", "no data was lost".
_NO_FAILURE = _cues(
    r"\bnothing (\w+ ){0,2}(broken|lost|wrong|failing|failed|down|affected|impacted)( yet)?\b",
    # "not seeing errors", "haven't hit any issues": the customer reports none.
    r"\b(not|aren't|are not|isn't|is not|haven't|have not|hasn't|has not|didn't|did not) (\w+ )?(seeing|getting"
    r"|having|hitting|noticing|seen|had|got|hit|noticed) (any )?(errors?|issues?|problems?|failures?|exceptions?)\b",
    *_NOTHING_LOST)
# Production that still works despite the problem: the rubric's production problem with a
# workaround in place, not a degraded production.
_NO_IMPACT_YET = _cues(
    # Not the rest of production: "Everything else in production is working" is a partial failure.
    r"(?<!else in )(?<!else on )\bprod(uction)? (is |still )*(works|working|fine|ok|up|running|unaffected)\b",
    r"\bnothing (\w+ ){0,2}(broken|affected|impacted)\b", *_NOTHING_LOST)
# Clauses that state a goal, not a symptom: "... so that we never lose an event", "... to avoid
# errors". Their negations must not count as failures.
_PURPOSE_CLAUSE = re.compile(
    r"\b(so (that )?([\w']+ ){0,8}?(never|cannot|can't|won't|don't|doesn't|do not|does not|will not)"
    r"|to (avoid|prevent|make sure|ensure)|in order to"
    # A warning heard is no symptom: "a colleague warned us the history would grow forever".
    r"|warned (us|me))\b[^.;?!]*"
    # Nor is a condition closed by a comma ("If it doesn't exist, ..."). One with no comma may run
    # into its main clause ("if approval comes late the raise call returns and nothing happens"): kept.
    r"|\b(if|unless|in case)\b[^,.;?!]*,"
    # A hypothetical: "If the pod dies between the calls we'd have a payment nobody hears about".
    r"|\bif\b[^.;?!]*\b(would|we'd|it'd|could|might|ends? up)\b[^.;?!]*",
    re.IGNORECASE)
# A sentence that asks for something ("We'd like to see which workflows failed") is a request:
# the rubric's feature or how-to request, not a failure report.
_REQUEST_OPENING = re.compile(
    r"^(please|(we|i)('d| would| want to| wish to) (like|love|want|prefer)|(we|i) (want|need to|have to)\b)",
    re.IGNORECASE)
# Where a request ends and a report may follow: "Please help fast, we are losing orders".
_AFTER_REQUEST = re.compile(r"[,:;]\s+|\s[-\u2013\u2014]\s")
# "And what happens ...?" opens like a question once its conjunction is set aside.
_LEADING_CONJUNCTION = re.compile(r"^(and|but|so|also|plus)\s+", re.IGNORECASE)
_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")
# A blank line, or a line break before a list item ("1) ...", "- ..."): a sentence ends there
# even without its full stop. A single line break inside a paragraph (a wrapped line) does not.
_PARAGRAPH_BREAK = re.compile(r"\s*\n\s*\n\s*|\s*\n(?=\s*(?:\d+[.)]|[-*\u2022])\s)")


def classify_ticket(description: str) -> Classification:
    """Category, priority and the signals behind them. A ticket out of scope (see
    `app.triage.scope`) gets category `other` and keeps the best match only as a signal."""
    from app.triage.scope import assess_scope  # scope reads the classification's top score

    hits, category, reasons, category_signal = _kb_reading(description)
    reasons = list(reasons)
    priority, priority_signals = decide_priority(description)
    classification = Classification(
        category=category, priority=priority, matched_slugs=[hit.slug for hit in hits],
        reasons=reasons + priority_signals, top_score=hits[0].score if hits else 0.0)
    scope = assess_scope(description, classification)
    if scope.in_scope:
        kb = category
        category, category_signal = decide_category(description, kb, category_signal)
        if category != kb:
            reasons = [category_signal]
    signals = [*priority_signals, category_signal]
    if not scope.in_scope:
        category = OUT_OF_SCOPE_CATEGORY
        signals.append(f"category {category}: {scope.reason}")
    return classification.model_copy(update={
        "category": category, "priority": priority, "reasons": reasons + priority_signals,
        "signals": [*signals, *scope.signals], "in_scope": scope.in_scope,
        "scope_score": scope.score, "scope_reason": scope.reason})


@lru_cache(maxsize=1024)
def _kb_reading(description: str) -> tuple[tuple[SearchHit, ...], str, tuple[str, ...], str]:
    """The best-matching articles, the category of the best (of the problem with most impact when
    the ticket has two), and the reasons and the signal that say so. Kept for the last tickets: triage, and the
    scope of triage and of the propose step, read it (the articles never change while the app runs)."""
    from app.expert.problems import split_problems  # problems read the priority from here

    hits = tuple(get_knowledge_search().search(description, k=MATCHES_KEPT))
    problems = split_problems(description) if hits else []
    if len(problems) > 1:
        first = problems[0]
        category = first.hits[0].category
        return hits, category, (f"category {category}: the problem with most impact of {len(problems)} best "
                          f"matches {first.slug}",), f"category {category}: " + (
                              ", ".join(matched_words(first.text, first.slug)) or first.slug)
    if hits:
        category = hits[0].category
        return hits, category, (f"category {category}: best knowledge-base match is {hits[0].slug}",), (
            f"category {category}: " + (", ".join(matched_words(description, hits[0].slug)) or hits[0].slug))
    # No article shares a word with the ticket: out of scope (scope says so too).
    return (hits, OUT_OF_SCOPE_CATEGORY, (f"category {OUT_OF_SCOPE_CATEGORY}: no knowledge-base article matches the description",),
            f"category {OUT_OF_SCOPE_CATEGORY}: no article shares a word with the ticket")


def kb_category(description: str) -> str:
    """The category the knowledge base alone gives a ticket (the category model's cue)."""
    return _kb_reading(description)[1]


def category_cues(kb: str) -> frozenset[str]:
    return frozenset({f"kb_category={kb}"})


def decide_category(description: str, kb: str, kb_signal: str) -> tuple[str, str]:
    """An in-scope ticket's category: the category model weighs the ticket's words and the
    knowledge base's best match (`kb`), among the Dapr categories. Measured on sets it never
    saw against the best match alone (docs/benchmarks.md, "Session 15")."""
    model = load_model("category")
    guess = model.predict(description, category_cues(kb),
                          among=frozenset(model.classes) - {OUT_OF_SCOPE_CATEGORY})
    if guess.label == kb:
        return kb, kb_signal
    words = ", ".join(repr(w) for w in guess.words) or "none stands out"
    return guess.label, (f"category {guess.label}: the category model, {guess.probability:.0%} (then "
                         f"{guess.runner_up}); words: {words}; the best article alone: {kb_signal[len('category '):]}")


# Chosen with whole sets held out of the model's training in turn (6 groups, 2,503 tickets:
# 0.5 against 0.6 took the decision from 0.9301 to 0.9341; docs/benchmarks.md, "Session 22").
# Never over a security exposure or a blocked release the rules read (decide_priority).
SURE_OF_ANOTHER_PRIORITY = 0.5
# Definitions the rules' reading keeps however sure the model is: the model learned little of
# them (an exposure: 26 of 32 held out, the rules 30; a blocked release kept: 0.9493 -> 0.9504
# with 2,723 tickets held out in turn, session 24; 0.9465 -> 0.9472 before that round's rules).
KEPT_DEFINITIONS = frozenset({"security_exposure", "release_blocked"})


def decide_priority(description: str) -> tuple[Priority, list[str]]:
    """The ticket's priority and the signals behind it. Where the ticket meets one of the rubric's
    definitions outright (production down or losing data, a security exposure, a blocked release,
    a production problem with a workaround, no failure at all), the rules settle it, unless the
    priority model is at least SURE_OF_ANOTHER_PRIORITY sure of another priority; where a failure
    is reported and how bad it is, or where, is a judgement, the model weighs the ticket's words
    (`ticket_model`). The rules read definitions from cue words: a failure told in other words
    ("tryLock always returns success:false") reads to them as no failure, and "every POST
    returns 403" in production as down though every GET works.

    Measured on the sets written blind (docs/benchmarks.md, "Session 15"): the rules were right
    on 14 of 15, 2 of 2, 2 of 2, 1 of 2 and 12 of 13 of those definitions, and on 27 of 46 of
    the rest. Session 16, with whole sets held out of the model (6 groups, 1,959 tickets): the
    model's say over the definitions took the decision from 1,788 to 1,812 right, the
    development sets unchanged (89 of 92). Session 22 (2,503 tickets): the model decides a
    failure with no environment named too (the rules had it medium unless the model was 70 %
    sure of low), and overrules a definition but a security exposure from 50 % sure: 0.9301 ->
    0.9417. Session 24 (2,723 tickets), nor a blocked release (KEPT_DEFINITIONS)."""
    reading = _read(description)
    cues = reading.cues()
    ruled, rule_reasons = reading.priority()
    rule_signals = [_as_signal(reason) for reason in rule_reasons]
    model = load_model("priority")
    guess = model.predict(description, cues)
    words = ", ".join(repr(w) for w in guess.words) or "none stands out"
    by_model = [f"priority {guess.label}: the priority model, {guess.probability:.0%} (then {guess.runner_up}; "
                f"from {model.trained_on} labelled tickets); words: {words}"]
    if _settled_by_definition(cues):
        if guess.label != ruled and guess.probability >= SURE_OF_ANOTHER_PRIORITY and not KEPT_DEFINITIONS & cues:
            return guess.label, [*by_model, *rule_signals, f"the rules alone: {ruled}, by the rubric's definition they read"]
        return ruled, [*rule_signals, f"priority {ruled}: the rubric's definition, read by the rules"]
    return guess.label, [*by_model, *rule_signals, *([f"the rules alone: {ruled}"] if ruled != guess.label else [])]


def _settled_by_definition(cues: frozenset[str]) -> bool:
    in_production = "environment=production" in cues
    production_down = in_production and bool({"outage", "data_loss"} & cues) and not {"workaround", "partial"} & cues
    worked_around = in_production and "workaround" in cues
    no_failure = not {"failure", "outage", "data_loss"} & cues
    return (production_down or worked_around or no_failure
            or bool({"security_exposure", "release_blocked", "question_only", "resolved"} & cues))


def matched_words(description: str, slug: str, limit: int = 4) -> list[str]:
    """The ticket's words (as written) that the article's title, keywords or symptoms contain."""
    article = load_articles()[slug]
    article_terms = set(analyze(f"{article.title} {' '.join(article.keywords)} "
                                f"{' '.join(article.symptoms)}"))
    words = []
    for word in dict.fromkeys(re.findall(r"[A-Za-z0-9][\w./:-]*[A-Za-z0-9]", description)):
        terms = analyze(word)
        if terms and all(term in article_terms for term in terms) and word.lower() not in words:
            words.append(word.lower())
    return words[:limit]


def _as_signal(reason: str) -> str:
    """A priority reason, as the rubric names the signal: "production impact: 'is down'"."""
    for prefix, name in _SIGNAL_NAMES:
        if reason.startswith(prefix):
            return f"{name}: {reason[len(prefix):].strip(' ()')}"
    return reason


_SIGNAL_NAMES = (
    ("production down or losing data", "production impact"),
    ("production degraded or partly failing", "production degraded"),
    ("production problem with a workaround", "workaround"),
    ("functional problem outside production", "functional problem"),
    ("security exposure", "security exposure"),
    ("release blocked", "release blocked"),
    ("no failure reported", "question or how-to"),
)


def assess_priority(description: str, ticket: str | None = None) -> tuple[Priority, list[str]]:
    """The rubric's priority and the cues that decided it. For one problem of a ticket, `ticket`
    is the whole description: where the problem does not say where it happens, the ticket does
    ("in production" said once applies to each problem)."""
    return _read(description, ticket).priority()


def rubric_cues(description: str) -> frozenset[str]:
    """What the rules read in a ticket, by the rubric's terms, for the priority model to weigh:
    the environment and whether an outage, data loss, a failure, a partial failure, a workaround,
    a security exposure or a blocked release is reported."""
    return _read(description).cues()


@dataclass(frozen=True)
class _Reading:
    """What the rules read in a ticket: the environment and the first words of each cue family
    (None when the ticket has none)."""
    environment: str
    env_reason: str
    outage: str | None
    data_loss: str | None
    failure: str | None
    partial: str | None
    workaround: str | None
    exposure: str | None
    blocked: str | None
    remedy: str | None = None  # a workaround they put in place (not only "no impact yet")
    only_asked: str | None = None  # the customer calls it a question or a how-to
    resolved: str | None = None  # the incident is over

    def priority(self) -> tuple[Priority, list[str]]:
        severe = self.outage or self.data_loss
        failure = self.failure or severe
        production, workaround = self.environment == "production", self.workaround
        reasons = [self.env_reason]
        if self.resolved and self.remedy:
            return "medium", reasons + [f"production problem with a workaround ({self.remedy!r}; the incident "
                                        f"is over: {self.resolved!r})"]
        if self.resolved and not self.exposure:
            return "low", reasons + [f"no failure reported: a question or how-to (the incident is over: {self.resolved!r})"]
        if production and severe and not workaround and not self.partial:
            return "critical", reasons + [f"production down or losing data ({severe!r})"]
        if self.exposure:
            return "high", reasons + [f"security exposure ({self.exposure!r})"]
        if self.blocked:
            return "high", reasons + [f"release blocked ({self.blocked!r})"]
        if self.only_asked and not (production and failure):
            return "low", reasons + [f"no failure reported: a question or how-to, so called ({self.only_asked!r})"]
        # A workaround in production says there is a problem, told in words no failure cue
        # reads ("grows 6 GB a day; a nightly job deletes old rows").
        if not failure and not (production and self.remedy):
            return "low", reasons + ["no failure reported: a question or how-to"]
        if production and workaround:
            return "medium", reasons + [f"production problem with a workaround ({workaround!r})"]
        if production:
            return "high", reasons + [f"production degraded or partly failing ({failure!r})"]
        return "medium", reasons + [f"functional problem outside production ({failure!r})"]

    def cues(self) -> frozenset[str]:
        found = {"outage": self.outage, "data_loss": self.data_loss, "failure": self.failure,
                 "partial": self.partial, "workaround": self.workaround,
                 "security_exposure": self.exposure, "release_blocked": self.blocked,
                 "question_only": self.only_asked, "resolved": self.resolved}
        return frozenset({f"environment={self.environment}", *(cue for cue, seen in found.items() if seen)})


def _read(description: str, ticket: str | None = None) -> _Reading:
    text = " ".join(description.split())
    statements = _statements_of(description)
    environment, env_reason = _environment(text)
    if environment == "unknown" and ticket is not None:
        environment, env_reason = _environment(" ".join(ticket.split()))
    return _Reading(
        environment=environment, env_reason=env_reason, outage=_first(_OUTAGE, statements),
        data_loss=_first(_DATA_LOSS, statements), failure=_first(_FAILURE, statements),
        partial=_first(_PARTIAL, statements),
        workaround=(remedy := _first(_WORKAROUND, statements)) or _first(_NO_IMPACT_YET, text), remedy=remedy,
        exposure=_first(_SECURITY_EXPOSURE, statements), blocked=_first(_RELEASE_BLOCKED, statements),
        only_asked=_first(_ONLY_A_QUESTION, text), resolved=_first(_RESOLVED, text))


def _environment(text: str) -> tuple[str, str]:
    negated, said_beside = _first(_NEGATED_PRODUCTION, text), None
    if negated:
        main = _ASIDE.sub(" ", text)
        if not _first(_NEGATED_PRODUCTION, main):
            said_beside = _first(_PRODUCTION, main)  # production, said outside the asides
        if not said_beside:
            return "non-production", f"environment: not production ({negated!r})"
    # A release to production held up by what fails before it: "blocked on a production go-live
    # ... in the new pre-prod environment every call fails" (the rubric's blocked release).
    if _first(_RELEASE_BLOCKED, text) and (before := _first(_NON_PRODUCTION, text)):
        return "non-production", f"environment: before production, holding up a release ({before!r})"
    if said_beside:
        return "production", f"environment: production ({said_beside!r}; not production only in an aside: {negated!r})"
    if (production := _first(_PRODUCTION, text)):
        return "production", f"environment: production ({production!r})"
    if (other := _first(_NON_PRODUCTION, text)):
        return "non-production", f"environment: non-production ({other!r})"
    if (urgent := _first(_URGENT_IMPACT, text)):
        return "production", f"environment: production, from the business impact ({urgent!r})"
    return "unknown", "environment: not stated, treated as non-production"


# An environment cue with the noun it qualifies ("the test environment", "our dev machines"):
# without the cue, the noun would still say where, not what.
_ENVIRONMENT_PHRASES = tuple(
    re.compile(rf"(?:{cues.pattern})(?:\s+(?:environments?|envs?|machines?|boxes|servers?|setup)\b)?",
               re.IGNORECASE)
    for cues in (_NEGATED_PRODUCTION, _PRODUCTION, _NON_PRODUCTION))


def without_environment(text: str) -> str:
    """The text without its environment cues ("in production", "on my laptop", "staging"): they
    say where a problem happens, not what it is about (triage scope weighs the rest)."""
    for phrases in _ENVIRONMENT_PHRASES:
        text = phrases.sub(" ", text)
    return text


def reports_or_asks(text: str) -> bool:
    """Whether a piece of a ticket reports a failure, asks, or requests something; else it only
    gives the setup ("We run 3 placement replicas in prod (HA install).")."""
    sentences = [s for s in _SENTENCES.split(" ".join(text.split())) if s.strip()]
    return (any(_is_question(s) or _REQUEST_OPENING.match(s.strip()) for s in sentences)
            or bool(_first(_FAILURE, _statements(text))) or bool(_first(_SECURITY_EXPOSURE, text))
            or bool(_first(_RELEASE_BLOCKED, text)))


def _statements_of(description: str) -> str:
    # Split before the line breaks go: a log excerpt or a question on a paragraph of its own
    # ("...daprd logs\n\nerror invoking app channel ...\n\nAny idea?") is a sentence of its own.
    return _statements("\n".join(" ".join(part.split()) for part in _PARAGRAPH_BREAK.split(description)))


def _statements(text: str) -> str:
    """The sentences that can report a failure: no questions, no goals, and no remarks about the
    environment ("we are not in production yet" reports no failure)."""
    sentences = (_reported_part(_after_request(s)) for s in _SENTENCES.split(text))
    return " ".join(_NO_FAILURE.sub("", _NEGATED_PRODUCTION.sub("", _PURPOSE_CLAUSE.sub("", s)))
                    for s in sentences)


def _after_request(sentence: str) -> str:
    """A sentence opening with a request reports nothing, except what follows the request after a
    comma or a colon ("Please help fast, we are losing orders every minute")."""
    if not _REQUEST_OPENING.match(sentence.strip()):
        return sentence
    rest = _AFTER_REQUEST.split(sentence, maxsplit=1)
    return rest[1] if len(rest) > 1 else ""


def _reported_part(sentence: str) -> str:
    """A statement whole; of a question, what it reports before it turns into asking ("X fails
    with Y, is there a way to ...?" reports that X fails); a question from its start, nothing."""
    if not _is_question(sentence):
        return sentence
    turns = [m.start() for m in _QUESTION_TURN.finditer(sentence)]
    report = sentence[:turns[-1]] if turns else ""
    return "" if not report or _is_question(report) else report


def _is_question(sentence: str) -> bool:
    opening = _LEADING_CONJUNCTION.sub("", sentence.strip())
    return sentence.rstrip().endswith("?") or bool(_QUESTION_OPENING.match(opening))


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(0) if match else None
