"""Crash injection (`make chaos`): tickets keep their promises while the app and its sidecar die.

    python -m benchmarks.chaos [--tickets 100] [--kills 20] [--seed 7]

Seeded: the seed fixes the plan (which process dies, at which kind of moment, the pauses, the
ticket texts); the moments themselves come from the running system. The run:

- files the tickets in waves, one wave before each kill;
- SIGKILLs the app (its process group: the API and its worker process), daprd, or the workflow
  worker process alone (which the app starts again itself), by plan, at moments of these kinds:
  `expert` (a ticket is in expert_analysis), `after_decision` (right after a decision was
  answered 202), `notification` (a ticket was approved and shows stage `notifying`) and
  `random`; after an app kill it sends a decision while the app is down (the client retries it
  after the restart); then restarts what it killed;
- approves every ticket when it waits (the client retries on connection errors and 5xx);
- waits until every ticket has finished, then checks, from the stores and from Redis itself:
  every ticket completed; one customer notification per ticket (one stored record, one
  distinct CloudEvent on `customer-notifications`, one message in the app's inbox, same text);
  no decision lost (every ticket completed with the approval it was sent, including those sent
  while the app was down); no ticket stuck.

Prints one JSON object; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from benchmarks.support import Deadline, Progress, new_service, stream_messages, ticket_body, wait_until  # noqa: E402
from tests.support.harness import TEST_TOKENS, Service, mailpit_messages  # noqa: E402

ENGINEER = {"Authorization": f"Bearer {TEST_TOKENS['engineer']}"}
FINAL = {"completed", "not_entitled", "escalated", "cancelled", "failed"}
MOMENTS = ("expert", "after_decision", "notification", "random")
REDELIVERY_WAIT = 75  # s: processingTimeout 30 s + redeliverInterval 5 s + margin
# The order in which combinations enter a plan: the first five already cover both kinds and
# the three named moments, so a small run (5 kills) has them all.
COVERAGE = [("app", "expert"), ("daprd", "after_decision"), ("app", "notification"),
            ("daprd", "expert"), ("app", "after_decision"), ("worker", "expert"), ("worker", "notification"),
            ("daprd", "notification"), ("app", "random"), ("daprd", "random"), ("worker", "after_decision")]
KINDS = ("app", "daprd", "worker")


def kill_plan(kills: int, rng: random.Random) -> list[tuple[str, str]]:
    plan = COVERAGE[:kills] + [(rng.choice(KINDS), rng.choice(MOMENTS))
                               for _ in range(max(0, kills - len(COVERAGE)))]
    rng.shuffle(plan)
    return plan


@dataclass
class Ledger:
    """What the client saw and did; shared by the threads under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stages: dict[str, str] = field(default_factory=dict)
    filed: list[str] = field(default_factory=list)
    decided: dict[str, float] = field(default_factory=dict)  # ticket -> when a 202 came back
    reserved: set[str] = field(default_factory=set)  # the killer decides these itself
    held: list[str] = field(default_factory=list)  # kept waiting, to be decided while the app is down
    sent_while_down: dict[str, int] = field(default_factory=dict)
    sent_while_daprd_down: dict[str, int] = field(default_factory=dict)
    retries: Counter = field(default_factory=Counter)


class Chaos:
    def __init__(self, service: Service, tickets: int, kills: int, seed: int, timeout: float,
                 quiet: bool = True, log=print):
        self.service = service
        self.rng = random.Random(seed)
        self.seed = seed
        self.n = tickets
        self.plan = kill_plan(kills, self.rng)
        self.bodies = [ticket_body(f"CH-{seed}-{i:03d}", i, self.rng) for i in range(tickets)]
        self.ids = [b["ticket_id"] for b in self.bodies]
        self.timeout = timeout
        self.quiet = quiet
        self.log = log
        self.ledger = Ledger()
        self.kills: list[dict] = []
        self.done = threading.Event()
        # keepalive_expiry under uvicorn's 5 s keep-alive timeout (no reuse of a closing connection)
        self.http = httpx.Client(base_url=service.url, headers=ENGINEER, timeout=15,
                                 limits=httpx.Limits(max_connections=16, keepalive_expiry=2.0))

    # -- HTTP with the client's retries ----------------------------------------------------------
    def _once(self, method: str, path: str, **kwargs) -> httpx.Response | None:
        """One attempt; None when the app cannot be reached (down or restarting)."""
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.HTTPError:
            return None

    def _retrying(self, method: str, path: str, ok: tuple[int, ...], what: str, **kwargs) -> httpx.Response:
        deadline = Deadline(self.timeout)
        while True:
            response = self._once(method, path, **kwargs)
            if response is not None and response.status_code in ok:
                return response
            if response is not None and response.status_code < 500:
                raise AssertionError(f"{what}: {response.status_code} {response.text[:300]}")
            with self.ledger.lock:
                self.ledger.retries[what.split()[0]] += 1
            if deadline.passed():
                raise AssertionError(f"{what}: no answer within {self.timeout}s")
            time.sleep(0.3)

    def stage(self, ticket_id: str) -> str | None:
        response = self._once("GET", f"/support/status/{ticket_id}")
        if response is None or response.status_code != 200:
            return None
        stage = response.json()["stage"]
        with self.ledger.lock:
            self.ledger.stages[ticket_id] = stage
        return stage

    def file(self, body: dict) -> None:
        self._retrying("POST", "/support/ticket", (200, 202), f"file {body['ticket_id']}", json=body)
        with self.ledger.lock:
            self.ledger.filed.append(body["ticket_id"])

    def decide(self, ticket_id: str) -> bool:
        """One attempt at approving; True when the service answered 202."""
        response = self._once("POST", f"/support/approve/{ticket_id}", json={"approved": True},
                              headers={"Idempotency-Key": f"chaos-{ticket_id}"})
        if response is not None and response.status_code == 202:
            with self.ledger.lock:
                self.ledger.decided.setdefault(ticket_id, time.monotonic())
            return True
        with self.ledger.lock:
            self.ledger.retries["decide"] += 1
        return False

    # -- the engineer: approves whatever waits -----------------------------------------------------
    def decider(self) -> None:
        with ThreadPoolExecutor(4) as pool:
            while not self.done.is_set():
                with self.ledger.lock:
                    watch = [t for t in self.ledger.filed if self.ledger.stages.get(t) not in FINAL]
                list(pool.map(self.stage, watch))
                with self.ledger.lock:
                    waiting = [t for t in watch if self.ledger.stages.get(t) == "awaiting_approval"
                               and t not in self.ledger.decided and t not in self.ledger.reserved
                               and t not in self.ledger.held]
                list(pool.map(self.decide, waiting))
                time.sleep(0.3)

    # -- the killer ----------------------------------------------------------------------------------
    def _wait_for(self, tickets: list[str], want: set[str], timeout: float, interval: float = 0.02) -> tuple[str, str] | None:
        deadline = Deadline(timeout)
        while not deadline.passed():
            for ticket_id in tickets:
                stage = self.stage(ticket_id)
                if stage in want:
                    return ticket_id, stage
            time.sleep(interval)
        return None

    def _moment(self, moment: str, wave: list[str], reserved: str | None) -> dict:
        """Waits for the moment; returns what was observed just before the kill."""
        if moment == "expert":
            candidates = wave or [t for t, s in self.ledger.stages.items() if s not in FINAL]
            hit = self._wait_for(candidates, {"expert_analysis"}, 30, 0.01)
            return {"ticket": hit[0], "stage": hit[1]} if hit else {"missed": "no ticket in expert_analysis"}
        if moment in ("after_decision", "notification"):
            for _attempt in range(3):  # "notifying" lasts ~100 ms: try another ticket if it was not seen
                observed = self._decide_then_watch(moment, reserved)
                if "missed" not in observed or moment == "after_decision":
                    return observed
                reserved = self._reserve([], moment)
            return observed
        time.sleep(self.rng.uniform(0.0, 1.5))
        return {}

    def _decide_then_watch(self, moment: str, reserved: str | None) -> dict:
        if reserved is None:
            return {"missed": "no ticket left to decide"}
        hit = self._wait_for([reserved], {"awaiting_approval"}, 60, 0.05)
        if not hit:
            return {"missed": f"{reserved} did not wait", "ticket": reserved}
        if not self.decide(reserved):
            return {"missed": f"decision for {reserved} refused", "ticket": reserved}
        if moment == "after_decision":
            return {"ticket": reserved, "stage": "decision answered 202"}
        hit = self._wait_for([reserved], {"notifying", "completed"}, 30, 0.005)
        stage = hit[1] if hit else self.ledger.stages.get(reserved)
        return {"ticket": reserved, "stage": stage, **({} if stage == "notifying" else {"missed": "not seen notifying"})}

    def _kill(self, kind: str) -> None:
        if kind == "worker":
            self.service.kill_worker()
        else:
            self.service.kill(kind)

    def _restart(self, kind: str) -> float:
        """Starts what was killed; a worker process is started again by the app itself: the time
        until it runs."""
        began = time.monotonic()
        if kind == "app":
            self.service.start_app()
        elif kind == "daprd":
            self.service.start_sidecar()
        else:
            wait_until(lambda: self.service.worker_pid() is not None, 30, "the app did not start its worker again",
                       interval=0.05)
        return round(time.monotonic() - began, 2)

    def _waves(self) -> list[list[dict]]:
        """The tickets in len(plan) + 1 waves of nearly equal size (one before each kill)."""
        count = len(self.plan) + 1
        size, extra = divmod(self.n, count)
        waves, start = [], 0
        for w in range(count):
            end = start + size + (1 if w < extra else 0)
            waves.append(self.bodies[start:end])
            start = end
        return waves

    def killer(self) -> None:
        waves = self._waves()
        for body in waves.pop(0):
            self.file(body)
        with Progress(len(self.plan), "kills", self.quiet, unit="kill") as progress:
            for number, (kind, moment) in enumerate(self.plan, 1):
                wave = waves.pop(0) if waves else []
                reserved = self._reserve(wave, moment)
                for body in wave:
                    self.file(body)
                observed = self._moment(moment, [b["ticket_id"] for b in wave], reserved)
                with self.ledger.lock:
                    in_flight = {t: s for t, s in self.ledger.stages.items() if s not in FINAL}
                self._kill(kind)
                killed_at = time.monotonic()
                record = {"n": number, "kind": kind, "moment": moment, **observed,
                          "in_flight": len([s for s in in_flight.values() if s != "awaiting_approval"]),
                          "waiting": len([s for s in in_flight.values() if s == "awaiting_approval"])}
                record["decision_while_down"] = self._decide_while_down(kind)
                time.sleep(self.rng.uniform(0.2, 2.0))
                record["down_s"] = round(time.monotonic() - killed_at, 2)
                record["restart_s"] = self._restart(kind)
                with self.ledger.lock:
                    self.ledger.reserved.clear()  # the killer holds no reservation between kills
                self.kills.append(record)
                self.log(json.dumps({"kill": record}))
                progress.update()
        for wave in waves:
            for body in wave:
                self.file(body)
        with self.ledger.lock:
            self.ledger.held.clear()  # whatever was held back is now decided by the decider

    def _reserve(self, wave: list[dict], moment: str) -> str | None:
        """The ticket the killer decides itself (moments after_decision and notification): the
        wave's first, else any ticket still waiting undecided. The wave's last ticket is held
        back from the decider, to be decided while a process is down."""
        with self.ledger.lock:
            if len(wave) > 1:
                self.ledger.held.append(wave[-1]["ticket_id"])
            if moment not in ("after_decision", "notification"):
                return None
            if wave:
                chosen = wave[0]["ticket_id"]
            else:
                waiting = [t for t in self.ledger.filed if self.ledger.stages.get(t) == "awaiting_approval"
                           and t not in self.ledger.decided and t not in self.ledger.held]
                chosen = waiting[0] if waiting else None
            if chosen:
                self.ledger.reserved.add(chosen)
            return chosen

    def _decide_while_down(self, kind: str) -> str | None:
        """Sends one decision while the app or its sidecar is down: it must fail now (no answer,
        or a 5xx) and be retried by the client after the restart. With only the worker down the
        API still takes decisions, so none is sent then."""
        if kind == "worker":
            return None
        with self.ledger.lock:
            waiting = [t for t in self.ledger.held if self.ledger.stages.get(t) == "awaiting_approval"
                       and t not in self.ledger.decided]
            if not waiting:
                return None
            ticket_id = waiting[0]
            self.ledger.held.remove(ticket_id)  # the decider retries it from now on
        if self.decide(ticket_id):  # cannot happen with a process down; reported if it does
            return f"{ticket_id}: answered 202 while {kind} was down"
        book = self.ledger.sent_while_down if kind == "app" else self.ledger.sent_while_daprd_down
        with self.ledger.lock:
            book[ticket_id] = book.get(ticket_id, 0) + 1
        return ticket_id

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> dict:
        started = time.monotonic()
        decider = threading.Thread(target=self.decider, daemon=True)
        decider.start()
        error = None
        try:
            self.killer()
            deadline = Deadline(self.timeout)
            with Progress(self.n, "finishing", self.quiet, unit="ticket") as progress:
                seen = 0
                while not deadline.passed():
                    with self.ledger.lock:
                        final = sum(1 for t in self.ids if self.ledger.stages.get(t) in FINAL)
                    progress.update(final - seen)
                    seen = final
                    if final == self.n:
                        break
                    time.sleep(0.5)
        except AssertionError as failure:
            error = str(failure)
        finally:
            self.done.set()
            decider.join(timeout=30)
        elapsed = time.monotonic() - started
        result = self.check()
        result["seconds"] = round(elapsed, 1)
        if error:
            result["error"] = error
            result["ok"] = False
        return result

    def check(self) -> dict:
        service = self.service
        statuses = {t: self._final_status(t) for t in self.ids}
        stuck = {t: s.get("stage") for t, s in statuses.items() if s.get("stage") not in FINAL}
        completed = [t for t, s in statuses.items() if s.get("stage") == "completed"]
        failed = {t: s.get("stage") for t, s in statuses.items() if s.get("stage") in FINAL - {"completed"}}

        # What really went over Redis: every XADD on the topic, by ticket.
        published = stream_messages(service.ports.infra.redis, "customer-notifications")
        by_ticket: dict[str, list[dict]] = {}
        for event in published:
            data = event.get("data") if isinstance(event.get("data"), dict) else {}
            by_ticket.setdefault(data.get("ticket_id"), []).append(event)
        notification_problems, raw_extra, redeliveries = {}, 0, 0
        # A delivery to the app cut by a kill is redelivered once it has been pending for the
        # component's processingTimeout (30 s, resources/support-pubsub.yaml), at the next
        # redeliverInterval (5 s): wait that long (and a margin) for every inbox record.
        inboxes: dict[str, dict | None] = {}
        deadline = Deadline(REDELIVERY_WAIT)
        waited_from = time.monotonic()
        while True:
            for ticket_id in self.ids:
                if not (inboxes.get(ticket_id) or {}).get("messages"):
                    inboxes[ticket_id] = service.state("analysis-state", f"inbox:customer-notifications:{ticket_id}")
            if all((v or {}).get("messages") for v in inboxes.values()) or deadline.passed():
                break
            time.sleep(1)
        inbox_wait = round(time.monotonic() - waited_from, 1)
        for ticket_id in self.ids:
            record = service.state("analysis-state", f"notification:{ticket_id}:resolved")
            inbox = inboxes[ticket_id]
            events = by_ticket.get(ticket_id, [])
            distinct = {e.get("id") for e in events}
            raw_extra += max(0, len(events) - len(distinct))
            redeliveries += (inbox or {}).get("redeliveries", 0)
            problem = []
            if record is None or record.get("kind") != "resolved":
                problem.append(f"stored record {record and record.get('kind')!r}")
            if len(distinct) != 1:
                problem.append(f"{len(distinct)} distinct messages on the topic")
            if inbox is None or len(inbox["messages"]) != 1:
                problem.append(f"inbox has {0 if inbox is None else len(inbox['messages'])} messages")
            elif record is not None and inbox["messages"][0]["data"].get("body") != record.get("body"):
                problem.append("inbox text differs from the stored notification")
            if events and record is not None and any(e.get("data", {}).get("body") != record.get("body") for e in events):
                problem.append("a published text differs from the stored notification")
            if problem:
                notification_problems[ticket_id] = problem

        decision_problems = {}
        for ticket_id in self.ids:
            stored = service.state("analysis-state", f"decision:{ticket_id}:0")
            applied = (statuses[ticket_id].get("output") or {}).get("decision") or {}
            problem = []
            if not stored or stored.get("approved") is not True:
                problem.append(f"decision record {stored!r}")
            if applied.get("approved") is not True:
                problem.append(f"workflow applied {applied!r}")
            if problem:
                decision_problems[ticket_id] = problem
        unanswered_while_down = [t for t in {**self.ledger.sent_while_down, **self.ledger.sent_while_daprd_down}
                                 if statuses[t].get("stage") != "completed" or t in decision_problems]

        # What reached the customers: the mails Mailpit holds, by the ticket id of their subject
        # ("Ticket {id}: ..."), read once every delivery has had its time.
        mails = Counter(m["Subject"].split()[1].rstrip(":") for m in mailpit_messages(service)
                        if m.get("Subject", "").startswith("Ticket "))
        mail_problems = {t: mails.get(t, 0) for t in completed if mails.get(t, 0) != 1}

        kinds = Counter(k["kind"] for k in self.kills)
        moments = Counter(f"{k['kind']}:{k['moment']}" for k in self.kills)
        missed = [k for k in self.kills if "missed" in k]
        checks = {
            "completed": f"{len(completed)}/{self.n}",
            "all_completed": len(completed) == self.n,
            "notifications_exactly_once": not notification_problems and len(by_ticket.get(None, [])) == 0,
            "no_decision_lost": not decision_problems and not unanswered_while_down,
            "one_mail_per_customer": not mail_problems,
            "none_stuck": not stuck,
            "kills_at_least_planned": len(self.kills) == len(self.plan) and kinds["app"] > 0 and kinds["daprd"] > 0,
            # The run proves nothing if the named moments were never hit: each must be, at least once.
            "moments_hit": all(any(k["moment"] == m and "missed" not in k for k in self.kills)
                               for m in ("expert", "after_decision", "notification")),
            "decision_sent_while_app_down": len(self.ledger.sent_while_down) > 0,
        }
        return {
            "part": "chaos", "seed": self.seed, "tickets": self.n,
            "kills": {"total": len(self.kills), "by_kind": dict(kinds), "by_moment": dict(moments),
                      "moments_missed": len(missed),
                      "in_flight_at_daprd_kills": sum(k["in_flight"] for k in self.kills if k["kind"] == "daprd"),
                      "restart_s_max": max((k["restart_s"] for k in self.kills), default=None)},
            "decisions": {"answered_202": len(self.ledger.decided),
                          "sent_while_app_down": len(self.ledger.sent_while_down),
                          "sent_while_daprd_down": len(self.ledger.sent_while_daprd_down),
                          "client_retries": dict(self.ledger.retries)},
            "notifications": {"stream_entries": len(published), "tickets_with_messages": len(by_ticket),
                              "duplicate_publishes_same_id": raw_extra, "inbox_redeliveries": redeliveries,
                              "seconds_until_every_inbox_had_it": inbox_wait,
                              "mails": sum(mails.values()), "tickets_mailed_other_than_once": len(mail_problems)},
            "checks": checks,
            "problems": {"stuck": stuck, "not_completed": failed, "notifications": notification_problems,
                         "mails": mail_problems,
                         "decisions": decision_problems, "sent_while_down_not_applied": unanswered_while_down,
                         "moments_missed": missed},
            "daprd_log": daprd_log_summary(service),
            "ok": all(v for k, v in checks.items() if isinstance(v, bool)),
        }

    def _final_status(self, ticket_id: str) -> dict:
        response = self._once("GET", f"/support/status/{ticket_id}")
        return response.json() if response is not None and response.status_code == 200 else {}


def daprd_log_summary(service: Service, top: int = 8) -> dict:
    """Error and warning messages in the daprd log, counted (their text cut to a stable prefix)."""
    path = service.stack.log_dir / "daprd.log"
    counts: Counter = Counter()
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") in ("error", "fatal", "warning"):
                if "customer-notification-llm" in entry.get("msg", ""):
                    continue  # offline mode: the conversation component has no key, by design
                counts[f"{entry['level']}: {entry.get('msg', '')[:110]}"] += 1
    return dict(counts.most_common(top))


def run(service: Service, tickets: int, kills: int, seed: int, timeout: float = 600, quiet: bool = True,
        log=print) -> dict:
    return Chaos(service, tickets, kills, seed, timeout, quiet, log).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600, help="s to wait for the last tickets")
    parser.add_argument("--base-port", type=int, default=31020)
    parser.add_argument("--workdir", type=Path, help="keep the run's data and logs here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    service = new_service("chaos", args.base_port, app_env={"APPROVAL_TIMEOUT": "1h"}, workdir=args.workdir)
    try:
        service.start()
        service.load_sample_data()
        result = run(service, args.tickets, args.kills, args.seed, args.timeout, args.quiet,
                     log=lambda line: print(line, file=sys.stderr))
    finally:
        service.stop()
    result["workdir"] = str(service.workdir)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
