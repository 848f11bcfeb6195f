"""The API's watcher of the read model's change markers (app/readmodel/ticket_changes.py): one
read for every waiter per interval, waiters woken when their ticket's marker moves, nothing
read while nobody waits."""

from __future__ import annotations

import asyncio
import threading
import time

from app.readmodel.ticket_changes import TicketChanges


class Markers:
    """A stand-in for ReadModel.change_markers that counts its reads."""

    def __init__(self):
        self.rows: dict[str, str] = {}
        self.reads: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, ticket_ids: list[str]) -> dict[str, str]:
        with self.lock:
            self.reads.append(list(ticket_ids))
            return {t: self.rows[t] for t in ticket_ids if t in self.rows}


def test_many_waiters_share_one_read_per_interval():
    markers = Markers()
    changes = TicketChanges(markers, interval=0.02)
    tickets = [f"T-{n}" for n in range(40)]
    watching = [changes.watch(t) for t in tickets]
    for w in watching:
        w.__enter__()
    markers.reads.clear()  # the 40 baselines, one each on entering
    time.sleep(0.3)
    for w in watching:
        w.__exit__(None, None, None)
    rounds = len(markers.reads)
    assert 5 <= rounds <= 20, rounds  # about one per 20 ms, not one per waiter
    assert all(sorted(r) == sorted(tickets) for r in markers.reads[1:-1])


def test_a_change_wakes_its_waiter_and_no_other():
    markers = Markers()
    markers.rows = {"A": "t1", "B": "t1"}
    changes = TicketChanges(markers, interval=0.02)
    with changes.watch("A") as a, changes.watch("B") as b:
        threading.Timer(0.1, lambda: markers.rows.update(A="t2")).start()
        began = time.monotonic()
        assert a.moved(timeout=2.0)
        assert time.monotonic() - began < 0.5
        assert not b.moved(timeout=0.1)
        assert not a.moved(timeout=0.05)  # the move was consumed


def test_a_change_right_after_entering_is_not_missed():
    """The baseline is read on entering: a change before the first round still counts."""
    markers = Markers()
    changes = TicketChanges(markers, interval=0.5)
    with changes.watch("C") as watch:  # no row yet: the baseline is ""
        markers.rows["C"] = "t1"  # the workflow records right after the raise
        assert watch.moved(timeout=2.0)


def test_an_async_waiter_is_woken_without_holding_a_thread():
    markers = Markers()
    markers.rows = {"D": "t1"}
    changes = TicketChanges(markers, interval=0.02)

    async def wait() -> tuple[bool, bool]:
        async with changes.watch("D") as watch:
            quiet = await watch.moved_async(0.1)
            asyncio.get_running_loop().call_later(0.05, lambda: markers.rows.update(D="t2"))
            return quiet, await watch.moved_async(2.0)

    assert asyncio.run(wait()) == (False, True)


def test_nothing_is_read_while_nobody_waits():
    markers = Markers()
    changes = TicketChanges(markers, interval=0.01)
    with changes.watch("E"):
        time.sleep(0.05)
    time.sleep(0.05)  # the round in progress when the watch ended
    count = len(markers.reads)
    time.sleep(0.2)
    assert len(markers.reads) == count


def test_a_read_model_that_cannot_be_read_leaves_the_waiter_to_its_timeout():
    def down(ticket_ids):
        raise OSError("database restarting")

    changes = TicketChanges(down, interval=0.01)
    with changes.watch("F") as watch:
        began = time.monotonic()
        assert not watch.moved(timeout=0.1)
        assert time.monotonic() - began >= 0.1


def test_a_wake_up_without_a_move_does_not_end_the_wait():
    """A signal left set while a move was being taken (a race with the reading thread) wakes
    the waiter once for nothing; it waits on for the rest of its timeout, it does not spin."""
    markers = Markers()
    markers.rows = {"G": "t1"}
    changes = TicketChanges(markers, interval=0.02)
    with changes.watch("G") as watch:
        watch._signal.set()  # stale: the marker did not move
        began = time.monotonic()
        assert not watch.moved(timeout=0.2)
        assert time.monotonic() - began >= 0.2

    async def wait_async() -> tuple[bool, float]:
        async with changes.watch("G") as watch:
            assert not await watch.moved_async(0.01)  # creates the async signal
            watch._async_signal.set()
            began = time.monotonic()
            return await watch.moved_async(0.2), time.monotonic() - began

    moved, waited = asyncio.run(wait_async())
    assert not moved and waited >= 0.2
