"""Tells the API's waiters when a ticket's read-model row changes: a status long-poll
(`?wait=`) and a decision waiting for the workflow's answer.

Each waiter used to read its ticket's change marker itself (every 20 ms for a decision, 100 ms
for a status), one query per waiter per interval. Here one thread reads the markers of every
ticket someone waits on in one query per interval, and only while someone waits; a waiter is
woken when its ticket's marker moves. The marker is the row's `updated_at` (every writer of the
row sets it: the workflow's records and the sweep's runtime statuses), "" while there is no row.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Callable

import anyio

logger = logging.getLogger(__name__)

# How often the markers are read while anyone waits.
CHECK_INTERVAL = 0.02


class TicketWatch:
    """One waiter's view of one ticket. `moved` answers whether the marker moved since the
    watch began or since the last `moved` that said so."""

    def __init__(self, ticket_id: str):
        self.ticket_id = ticket_id
        self._seen: str | None = None  # the first read sets it
        self._latest: str | None = None
        self._signal = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_signal: asyncio.Event | None = None

    def _update(self, marker: str) -> None:
        """From the reading thread."""
        self._latest = marker
        if self._seen is None:
            self._seen = marker
        elif marker != self._seen:
            self._signal.set()
            if self._loop is not None and self._async_signal is not None:
                self._loop.call_soon_threadsafe(self._async_signal.set)

    def _consume(self) -> bool:
        """Whether the marker moved since the waiter last took a move; takes it. The state, not
        the signal, decides: a signal set while a move was being taken wakes the waiter once,
        for nothing, and is cleared."""
        if self._latest is not None and self._seen is not None and self._latest != self._seen:
            self._seen = self._latest
            return True
        return False

    def moved(self, timeout: float) -> bool:
        """Blocks up to `timeout` s (a thread's waiter)."""
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._consume():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._signal.wait(left)
            self._signal.clear()
        return True

    async def moved_async(self, timeout: float) -> bool:
        """Waits up to `timeout` s without holding a thread (an async route's waiter)."""
        loop = asyncio.get_running_loop()
        if self._async_signal is None:
            self._loop, self._async_signal = loop, asyncio.Event()
        deadline = loop.time() + max(0.0, timeout)
        while not self._consume():
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._async_signal.wait(), left)
            except asyncio.TimeoutError:
                pass
            self._async_signal.clear()
        return True


class TicketChanges:
    def __init__(self, read_markers: Callable[[list[str]], dict[str, str]], interval: float = CHECK_INTERVAL,
                 source: object = None):
        self._read = read_markers
        self.source = source  # what the markers are read from (the API's dependency compares it)
        self.interval = interval
        self._watches: dict[int, TicketWatch] = {}
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._failing = False  # logged once per outage, not at every round

    def watch(self, ticket_id: str) -> "_Watching":
        """`with changes.watch(ticket_id) as watch:` (or `async with`): the marker as it is on
        entering is the baseline, so a change made right after is not missed."""
        return _Watching(self, ticket_id)

    def _baseline(self, watch: TicketWatch) -> None:
        try:
            watch._update(self._read([watch.ticket_id]).get(watch.ticket_id, ""))
        except Exception:  # noqa: BLE001 - the reading thread's first round sets it instead
            pass

    def _add(self, watch: TicketWatch) -> None:
        with self._lock:
            self._watches[id(watch)] = watch
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ticket-changes", daemon=True)
                self._thread.start()
            self._lock.notify()

    def _remove(self, watch: TicketWatch) -> None:
        with self._lock:
            self._watches.pop(id(watch), None)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._watches:
                    if not self._lock.wait(timeout=60):
                        self._thread = None  # idle a minute: a later watch starts a new thread
                        return
                watches = list(self._watches.values())
            started = time.monotonic()
            try:
                markers = self._read(sorted({w.ticket_id for w in watches}))
            except Exception as error:  # noqa: BLE001 - a waiter falls back on its timed re-reads
                if not self._failing:
                    logger.warning("reading the tickets' change markers failed; waiters fall back on timed reads",
                                   extra={"error": f"{type(error).__name__}: {error}"[:300]})
                self._failing = True
            else:
                self._failing = False
                for watch in watches:
                    watch._update(markers.get(watch.ticket_id, ""))
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))


class _Watching:
    def __init__(self, changes: TicketChanges, ticket_id: str):
        self._changes, self._watch = changes, TicketWatch(ticket_id)

    def __enter__(self) -> TicketWatch:
        self._changes._baseline(self._watch)
        self._changes._add(self._watch)
        return self._watch

    def __exit__(self, *_) -> None:
        self._changes._remove(self._watch)

    async def __aenter__(self) -> TicketWatch:
        await anyio.to_thread.run_sync(self._changes._baseline, self._watch)
        self._changes._add(self._watch)
        return self._watch

    async def __aexit__(self, *_) -> None:
        self.__exit__()
