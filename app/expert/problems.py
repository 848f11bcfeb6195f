"""The distinct problems one ticket reports, each with its best article and its impact.

"Our app gets 401 on every call, and we also see the sidecar running out of memory" reports
two problems; searching the whole description finds the stronger one and buries the other. The
description is cut into clauses (sentences, and coordinated clauses: ", and", ";", " but "); a
clause is a problem of its own when its own best article is a strong match (a BM25 score of at
least `MIN_PROBLEM_SCORE`) and differs from the articles of the problems before it. Impact is
the rubric priority of the clause, read with the ticket's context sentences (environment, scale);
between problems of the same priority, what the customer says of their weight ("quick one
first", "the actual issue") orders them, then the order they were written in.

A ticket that announces several problems ("Two things:", "a couple of issues") and lists them
("1) ...", "a) ...", "- ...") has one problem per item. Each problem's impact is read from its own
part of such a ticket and from an opening that names no problem, not from another problem's part.
A sentence weighing one problem against the other ("the cron one matters more", "b) can wait")
orders problems of one priority; it names a problem by place or by a word of the problem's text.

A clause that announces itself as an additional problem ("we also see ...", "separately, ...",
"... is ignored too", "while we're at it", "the bigger problem: ...", "Secondly, ...") cuts the
description into segments, one problem each at most: there the customer, not the retrieval
margin, says that a second problem starts. Each segment is searched as a whole and is a problem
when its best article is strong, however close the runner-up: the marker says a problem is
there, the best article is the best guess at which one (the runner-up still reaches the
citations through the fused ranking). Searched whole, a segment's setup and the facts the
customer checked and found fine weigh as context, not as problems of their own (measured over
every labelled set, session 24: top article 0.886 -> 0.898, both problems cited 0.952 -> 0.958).

Customers also write two problems as two sentences with no connective. A sentence none of whose
clauses names a problem is searched whole, and is a problem when it matches one article clearly
and that article is of another category than the problems before it: a sentence that only adds
the impact, the setup or more detail of a problem points back, matches weakly, or matches the
same family of articles.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from app.domain.triage import Priority
from app.knowledge.search import SearchHit, analyze, get_knowledge_search
from app.triage.classify import assess_priority, reports_or_asks

# A clause's best article must score this much to count as a problem of its own (single-word
# clauses such as "Dev cluster." score far lower).
MIN_PROBLEM_SCORE = 6.0
# ... and lead its runner-up clearly: a clause that matches several articles alike names no
# problem of its own.
MIN_PROBLEM_LEAD = 1.3
MAX_PROBLEMS = 3
HITS_PER_PROBLEM = 3
PRIORITY_RANK: dict[str, int] = {"critical": 0, "high": 1, "medium": 2, "low": 3}

# A clause that opens by pointing back ("This blocks our release", "It happens hourly") or by
# giving a consequence ("Because the apps get no answer, ordering is dead") tells the impact of
# the problem before it, not a new one.
_POINTS_BACK = re.compile(r"^(this|that|it|which|these|those|because|as a result|consequently|therefore"
                          r"|hence)\b", re.IGNORECASE)
# Words calling a problem the weightier one ("the bigger problem", "the real reason").
_WEIGHTIER = r"(bigger|biggest|main|real|more (urgent|important|pressing|serious))"
# Additive connectives: a clause that reports something besides what came before, or says that
# what follows is the other, weightier problem ("But the bigger problem: ...").
_ADDITIONAL = re.compile(
    r"\b(also|separately|additionally|in addition|besides|moreover|on top of that|as well as"
    r"|while (we'?re|we are|i'?m|i am) at it|unrelated(ly)?|one more (thing|question|issue)"
    r"|another (thing|question|issue|problem)|(second|third|other|next|last) (thing|question|issue|problem|point)"
    r"|on (a|an|another) (separate|different|other|unrelated)? ?note|side (note|question|thing)|for later"
    # A second question numbered as such: "q2:", "question 2:".
    r"|q ?2|question (#|no\.? ?)?2"
    # An ordinal opening: "Second, a general question: ...", "Secondly, is there ...", "Finally, ...".
    r"|^(second|third|fourth)(ly)?\s*[,:]|^(secondly|thirdly|finally|lastly)\b"
    r"|(second|third|other|next|last),? ((a|an|the) )?[\w-]+ (thing|question|issue|problem|point)"
    rf"|(the )?{_WEIGHTIER} (problem|issue|concern))\b"
    r"|^p\.? ?s\b|\b(too|either|as well)\s*[.!?]?$", re.IGNORECASE)
# What the customer says of a problem's weight, which orders problems of the same priority
# ("Quick one first: ...", "The actual issue: ...").
_SAID_MAIN = re.compile(rf"\b(the )?(actual|{_WEIGHTIER}) (reason|issue|problem|question|concern)\b"
                        r"|\b(the )?(thing|part|one) (that )?(actually |really )?(worries|concerns|bothers|scares) (us|me)\b"
                        r"|\b(more|most) importantly\b", re.IGNORECASE)
# Said against another problem: "quick question first", not a ticket opening "quick question".
_SAID_MINOR = re.compile(r"\b(quick|small) (one|question|thing) (first|before)\b|\bside (question|note|thing)\b"
                         r"|\bminor (one|question|thing|issue|point)\b|\b(less|not|nothing) (pressing|urgent|important)\b"
                         r"|\bno rush\b|\blow(er)?[- ]priority\b", re.IGNORECASE)
# A ticket that announces several problems ("Two things.", "a couple of issues") and numbers them:
# each numbered or bulleted item ("1) ...", "2. ...", "- ...", "Second, ...") starts one. Numbered steps of one problem
# ("1. deploy the app 2. call it") come with no such announcement.
_ENUMERATION = re.compile(r"\b(two|2|three|3|a couple of|several|multiple|a few)( [\w/-]+){0,2} (things|issues"
                          r"|problems|questions|topics|points)\b", re.IGNORECASE)
_NUMBER = r"\(?(?:\d{1,2}[.)]|[a-h]\))"  # "1.", "2)", "(3)", "a)"
_BULLET = r"[-*\u2022]"
# (A number followed by a full stop is a clause of its own once clauses are cut: "1." alone.)
_LIST_ITEM = re.compile(rf"^(?:{_NUMBER}|{_BULLET}|(first|second|third)(ly)?[,:])(\s|$)", re.IGNORECASE)
# A line break before a numbered item ends a clause (the rest of the ticket's line breaks do not);
# before a bullet only where the ticket announces several problems: elsewhere a "- " line is as
# likely a line of YAML.
_BEFORE_NUMBERED_ITEM = re.compile(rf"\s*\n\s*(?={_NUMBER}\s)")
_BEFORE_LIST_ITEM = re.compile(rf"\s*\n\s*(?=(?:{_NUMBER}|{_BULLET})\s)")
# A sentence weighing one problem against the other, naming it ("The cron one matters more to
# us", "b) is the one that hurts", "The 401 is what's blocking the team", "the outbox can wait").
_REF = r"(?P<ref>(?:\b[\w-]+\)?\s*){1,4}?)"
_MATTERS_MORE = re.compile(
    _REF + r"\s*(matters? (more|most)|is (the one|what'?s?|what is) (that )?(hurts?|matters?|blocks?|blocking|is blocking"
    r"|urgent|hurting)|is (more|most|the more|the most) (important|urgent|pressing|painful))\b", re.IGNORECASE)
_CAN_WAIT = re.compile(_REF + r"\s*(can wait|is not urgent|isn'?t urgent|is less (important|urgent|pressing))\b",
                       re.IGNORECASE)
_FIRST_PLACE = frozenset({"first", "former", "a", "1"})
_SECOND_PLACE = frozenset({"second", "latter", "b", "2"})
_REF_FILLER = frozenset({"the", "one", "ones", "issue", "problem", "thing", "question", "this", "that", "our",
                         "with", "about", "of", "is", "and", "but", "whereas", "while", "to", "us", "me"})
# A sentence telling what the customer runs, is building or changed ("We're designing a new order
# service on Dapr.", "We run 3 placement replicas in prod") is the setup, not a problem, unless it
# also reports a failure or asks.
_SETUP_OPENING = re.compile(r"^(we|i)('re|'m| are| am)? (currently |now )?(designing|building|evaluating|planning|considering"
                            r"|migrating|moving|running|using|run|use|have|host|deploy|operate"
                            # what they changed, before the failure it caused ("We moved all workloads
                            # into a new namespace this morning.")
                            r"|moved|migrated|upgraded|switched|renamed|deployed|rolled out|changed|installed)\b",
                            re.IGNORECASE)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+|,\s+(?:and|but)\s+|;\s*|\s+but\s+also\s+",
                           re.IGNORECASE)


class Problem(BaseModel):
    text: str
    slug: str  # its best article
    score: float
    priority: Priority
    hits: list[SearchHit]


def split_problems(description: str) -> list[Problem]:
    """The ticket's problems, most impact first (then in the order written). One problem at
    least when any article matches: the whole description."""
    numbered = bool(_ENUMERATION.search(description))
    items = (_BEFORE_LIST_ITEM if numbered else _BEFORE_NUMBERED_ITEM).split(description.strip())
    text = "\n".join(" ".join(item.split()) for item in items)
    search = get_knowledge_search()
    clauses = [c.strip() for c in _CLAUSE_BREAK.split(text) if c and c.strip()]
    segments = _segments(clauses, numbered=numbered)
    named: list[tuple[str, list[SearchHit]]] = []
    if len(segments) > 1:
        # The customer marked the problems off: one per segment, searched whole, so that a setup
        # clause ("the state store has actorStateStore: true") or a fact checked and found fine
        # is no problem of its own, and each problem is read with all its words.
        for segment in segments:
            whole = " ".join(segment)
            hits = search.search(whole, k=HITS_PER_PROBLEM)
            named.extend([(whole, hits)] if hits and hits[0].score >= MIN_PROBLEM_SCORE else [])
    else:
        searched = ((clause, search.search(clause, k=HITS_PER_PROBLEM)) for clause in clauses)
        named.extend((clause, hits) for clause, hits in searched if _names_a_problem(clause, hits))
    named = [(clause, hits) for clause, hits in _with_unmarked_problems(text, named)
             if not (_SETUP_OPENING.match(clause) and not reports_or_asks(clause))]
    unnamed = [[clause for clause in segment if all(clause not in other for other, _ in named)]
               for segment in segments]

    # Clauses whose best article is the same are one problem told in parts ("two VMs, test lab.
    # app-a cannot invoke app-b"): its impact is read from all of them, and it stands where it is
    # told most clearly (its best-matching clause), not where its setup is.
    parts: dict[str, list[str]] = {}
    best: dict[str, list[SearchHit]] = {}
    told_at: dict[str, int] = {}
    for at, (clause, hits) in enumerate(named):
        slug = hits[0].slug
        parts.setdefault(slug, []).append(clause)
        if slug not in best or hits[0].score > best[slug][0].score:
            best[slug], told_at[slug] = hits, at
    problems: list[Problem] = []
    for slug in sorted(parts, key=told_at.__getitem__):
        told = " ".join(parts[slug])
        priority, _ = assess_priority(f"{told} {_context(told, segments, unnamed)}", ticket=text)
        problems.append(Problem(text=told, slug=slug, score=best[slug][0].score,
                                priority=priority, hits=best[slug]))
    if len(problems) < 2:
        whole = search.search(text, k=HITS_PER_PROBLEM)
        if not whole:
            return []
        return [Problem(text=text, slug=whole[0].slug, score=whole[0].score,
                        priority=assess_priority(text)[0], hits=whole)]
    # Stable: on equal priority what the customer says of a problem's weight, then written order.
    weights = _weights_said_apart(text, problems)
    problems.sort(key=lambda p: (PRIORITY_RANK[p.priority], weights.get(p.slug) or _said_weight(p.text)))
    return problems[:MAX_PROBLEMS]


def _weights_said_apart(text: str, problems: list[Problem]) -> dict[str, int]:
    """What the customer says of a problem's weight in a sentence of its own, naming it ("The cron
    one matters more to us", "b) is the one that hurts", "the outbox can wait"): -1 for the main
    problem, 1 for the minor one, by the slug of the problem named. A problem is named by its
    place ("the first one", "a)", "2.") or by a word of its own text ("the 401", "the cron one")."""
    weights: dict[str, int] = {}
    written = sorted(problems, key=lambda p: _position(text, p.text))
    for sentence in _SENTENCE_BREAK.split(text):
        for pattern, weight in ((_MATTERS_MORE, -1), (_CAN_WAIT, 1)):
            for match in pattern.finditer(sentence):
                named = _named_problem(match.group("ref"), written, sentence)
                if named is not None:
                    weights.setdefault(named.slug, weight)
    return weights


def _named_problem(ref: str, written: list[Problem], weighing: str) -> Problem | None:
    """The problem `ref` names, by its place or by its words; None when it names none, or several."""
    words = [w.lower() for w in re.findall(r"[\w-]+", ref)]
    words = words[1:] if words[:1] == ["the"] else words
    if not words:
        return None
    for places, at in ((_FIRST_PLACE, 0), (_SECOND_PLACE, 1)):
        if words[0] in places:
            return written[at] if at < len(written) else None
    content = analyze(" ".join(w for w in words if w not in _REF_FILLER))
    # Not the weighing sentence itself: "the jobs can wait" names the jobs wherever it was read.
    found = [p for p in written if content and set(content) <= set(analyze(p.text.replace(weighing.strip(), " ")))]
    return found[0] if len(found) == 1 else None


def _context(told: str, segments: list[list[str]], unnamed: list[list[str]]) -> str:
    """The clauses that tell a problem's impact and place without naming a problem: in a ticket
    the customer marked off into problems, those of the problem's own segments and of an opening
    that names none ("Subject: two things ..."), not another problem's ("Nothing is broken" said of
    the first problem says nothing of the second); otherwise all of them."""
    if len(segments) == 1:
        return " ".join(unnamed[0])
    own = {i for i, segment in enumerate(segments) if any(clause in told for clause in segment)}
    if len(unnamed[0]) == len(segments[0]):  # an opening that names no problem
        own.add(0)
    return " ".join(clause for i in sorted(own) for clause in unnamed[i])


def _segments(clauses: list[str], numbered: bool = False) -> list[list[str]]:
    """The clauses cut before each clause marked as an additional problem (one that
    points back stays with the problem before it), and, in a ticket that announces several
    problems (`numbered`), before each numbered item. The marked clause need not match an article
    strongly alone ("But the bigger problem: in production ..."): each segment is searched whole."""
    segments: list[list[str]] = []
    for clause in clauses:
        marked = _ADDITIONAL.search(clause) or (numbered and _LIST_ITEM.match(clause))
        starts = bool(marked and not _POINTS_BACK.match(clause))
        if not segments or (starts and segments[-1]):
            segments.append([])
        segments[-1].append(clause)
    return segments


def _with_unmarked_problems(text: str, named: list[tuple[str, list[SearchHit]]]
                            ) -> list[tuple[str, list[SearchHit]]]:
    """`named` with the sentences that report a problem of their own without saying so ("The sidecar
    cannot reach the app. Our workflow history keeps growing."), in written order. A sentence none of whose
    clauses leads clearly can, searched whole, match one article clearly; it is a problem of its
    own when that article is of another category than every problem named so far: a sentence that
    adds the impact or the setup of a problem points back, matches weakly, or matches the same
    family of articles."""
    search = get_knowledge_search()
    found = list(named)
    for sentence in (s.strip() for s in _SENTENCE_BREAK.split(text) if s and s.strip()):
        if any(clause in sentence or sentence in clause for clause, _ in found):
            continue
        hits = search.search(sentence, k=HITS_PER_PROBLEM)
        categories = {problem_hits[0].category for _, problem_hits in found}
        if _names_a_problem(sentence, hits) and hits[0].category not in categories:
            found.append((sentence, hits))
    return sorted(found, key=lambda problem: _position(text, problem[0]))


def _position(text: str, problem_text: str) -> int:
    """Where a problem starts in the text: its first clause is there verbatim, or, for a segment
    searched whole (its clauses joined without the connectives that separated them), the first
    words of it."""
    first = _CLAUSE_BREAK.split(problem_text, maxsplit=1)[0].strip()
    at = text.find(first)
    words = first.split()
    for n in (3, 2, 1):
        if at >= 0:
            break
        at = text.find(" ".join(words[:n]))
    return at


def _said_weight(text: str) -> int:
    """1 where the customer calls a problem a minor one, -1 where the main one, else 0 ("Quick
    question before the real issue: ..." is the minor one)."""
    if _SAID_MINOR.search(text):
        return 1
    return -1 if _SAID_MAIN.search(text) else 0


def _names_a_problem(clause: str, hits: list[SearchHit]) -> bool:
    if not hits or hits[0].score < MIN_PROBLEM_SCORE or _POINTS_BACK.match(clause):
        return False
    return len(hits) == 1 or hits[0].score >= MIN_PROBLEM_LEAD * hits[1].score
