"""The ticket read model: one row per ticket and its timeline events, projected from what the
ticket workflow recorded (`ProgressRecord`s: its `record_progress` steps, and in v2 the records
its other steps carry, app/workflows/runtime.py) and from the
runtime's own status of each instance.

It is a derived view: the workflows are the source of truth, and `rebuild.py` recreates it from
them when it is lost. It lives in SQL rather than in a Dapr state store because listing needs
filters, ordering and a keyset cursor over every ticket, which the Dapr state API cannot do on
SQLite (and `state.postgresql` v2 has no query API either); with one row per ticket no key is
rewritten by every filing.

SQLite (the embedded default, `sqlite:///PATH`) is opened by every process that needs it; a
`postgresql://` URL (the PostgreSQL and replicated profiles) goes through psycopg to the schema
`readmodel` of that database, shared by every replica.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from app.workflows.contracts import FINAL_STAGES, ProgressRecord, TimelineEvent

# The meta entry where the worker's sweep shows what its last purge check cost (app/readmodel/sync.py).
PURGE_CHECK_META = "purge_check"

# Columns a list can filter on, with their SQL types.
COLUMNS = {
    "customer_id": "TEXT", "filed_at": "TEXT", "filed_by": "TEXT", "description": "TEXT",
    "stage": "TEXT", "priority": "TEXT", "category": "TEXT", "plan": "TEXT", "entitled": "INTEGER",
    "revision": "INTEGER", "awaiting_decision": "INTEGER", "awaiting_since": "TEXT",
    "escalated": "INTEGER", "escalations": "TEXT", "sla_due": "TEXT", "confidence": "REAL",
    "workflow_version": "TEXT",
}
FILTERABLE = ("status", "stage", "priority", "customer_id", "category", "plan", "awaiting_decision",
              "escalated", "workflow_version")
BOOLEAN = {"entitled", "awaiting_decision", "escalated"}
JSON_COLUMNS = {"escalations"}

# {event_order} is the dialect's insertion-order column of ticket_events (SQLite has rowid).
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'running',
    runtime_checked_at TEXT,
    updated_at TEXT NOT NULL,
    {", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())}
);
CREATE INDEX IF NOT EXISTS tickets_filed ON tickets (filed_at DESC, ticket_id DESC);
CREATE INDEX IF NOT EXISTS tickets_stage ON tickets (stage, filed_at DESC, ticket_id DESC);
CREATE INDEX IF NOT EXISTS tickets_status ON tickets (status, filed_at DESC, ticket_id DESC);
CREATE INDEX IF NOT EXISTS tickets_customer ON tickets (customer_id, filed_at DESC, ticket_id DESC);
CREATE INDEX IF NOT EXISTS tickets_awaiting ON tickets (awaiting_decision, sla_due);
CREATE INDEX IF NOT EXISTS tickets_awaiting_filed ON tickets (awaiting_decision, filed_at DESC, ticket_id DESC);
-- The sweep's query (ReadModel.running): the rows still running, least recently checked first.
CREATE INDEX IF NOT EXISTS tickets_sweep ON tickets ((COALESCE(awaiting_decision, 0)), (COALESCE(runtime_checked_at, ''))) WHERE status IN ('running', 'suspended');
CREATE TABLE IF NOT EXISTS ticket_events (
    ticket_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    details TEXT NOT NULL,{{event_order_column}}
    PRIMARY KEY (ticket_id, key)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


# A cursor is "{filed_at}~{ticket_id}" of the last ticket of a page: every string the pattern
# admits decodes, so the API document states the whole rule.
CURSOR_PATTERN = r"^[0-9T:.+-]{0,40}~[A-Za-z0-9_-]{1,64}$"


def encode_cursor(filed_at: str | None, ticket_id: str) -> str:
    return f"{filed_at or ''}~{ticket_id}"


def decode_cursor(cursor: str) -> tuple[str, str]:
    """ValueError for a cursor this service did not hand out."""
    if not re.match(CURSOR_PATTERN, cursor):
        raise ValueError("invalid cursor")
    filed_at, _, ticket_id = cursor.rpartition("~")
    return filed_at, ticket_id


class _SQLite:
    """The embedded default: one file, opened by every process that needs it."""

    placeholder = "?"
    event_order = "rowid"
    # A local file is never "unreachable": its errors (a locked or broken file) stay errors.
    unreachable: tuple = ()

    def __init__(self, url: str):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA.format(event_order_column=""))

    def execute(self, sql: str, args: Iterable = ()) -> list:
        return self.db.execute(sql, tuple(args)).fetchall()

    def executemany(self, sql: str, rows: list) -> None:
        self.db.executemany(sql, rows)

    @contextmanager
    def transaction(self):
        # IMMEDIATE: take the write lock first, so the read of seq and the write are one step.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class _PostgreSQL:
    """The replicated profile: every replica's app shares one schema (`readmodel`) of the
    stack's PostgreSQL. One connection per process; a broken one (the server restarted) is
    reopened on the next call."""

    placeholder = "%s"
    event_order = "id"
    SCHEMA_NAME = "readmodel"

    def __init__(self, url: str):
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError as error:  # pragma: no cover - requirements.txt pins it
            raise ValueError("a postgresql:// READ_MODEL_URL needs psycopg (requirements.txt)") from error
        self._psycopg, self._dict_row, self._url = psycopg, dict_row, url
        # The server refused or lost the connection (restarting, not yet accepting connections).
        self.unreachable = (psycopg.OperationalError,)
        self.db = None
        self._connect()
        with self.transaction():
            # Replicas start together: one creates the schema, the others wait for it.
            self.db.execute("SELECT pg_advisory_xact_lock(hashtext('support-readmodel-schema'))")
            self.db.execute(f"CREATE SCHEMA IF NOT EXISTS {self.SCHEMA_NAME}")
            # REAL is 8 bytes in SQLite, 4 in PostgreSQL: the confidence keeps its digits.
            schema = SCHEMA.format(event_order_column="\n    id BIGSERIAL,").replace(" REAL", " DOUBLE PRECISION")
            for statement in schema.split(";"):
                if statement.strip():
                    self.db.execute(statement)

    def _connect(self) -> None:
        self.db = self._psycopg.connect(self._url, autocommit=True, row_factory=self._dict_row,
                                        connect_timeout=10,
                                        options=f"-c search_path={self.SCHEMA_NAME}")

    def _ensure(self) -> None:
        if self.db is None or self.db.closed or self.db.broken:
            self._connect()

    def execute(self, sql: str, args: Iterable = ()) -> list:
        self._ensure()
        cursor = self.db.execute(sql, tuple(args))
        return cursor.fetchall() if cursor.description else []

    def executemany(self, sql: str, rows: list) -> None:
        if rows:
            self.db.cursor().executemany(sql, rows)

    @contextmanager
    def transaction(self):
        self._ensure()
        with self.db.transaction():
            yield

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def _backend(url: str):
    if url.startswith("sqlite:///"):
        return _SQLite(url)
    if url.startswith(("postgresql://", "postgres://")):
        return _PostgreSQL(url)
    # Only the scheme: the URL may hold a password.
    raise ValueError(f"unsupported READ_MODEL_URL scheme {url.split(':', 1)[0]!r}: "
                     "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE")


class ReadModelUnavailable(RuntimeError):
    """The read model's database cannot be reached (a PostgreSQL server restarting): the views
    answer 503 with Retry-After (app/api/errors.py), not 500; nothing was read or written."""


class ReadModel:
    """The tickets table and their events. Thread-safe; one connection per process. The SQL is
    shared by both backends; they differ in the placeholder and the events' insertion order."""

    def __init__(self, url: str):
        self._backend = _backend(url)
        self.path = getattr(self._backend, "path", None)
        self._lock = threading.Lock()
        self._built = False

    def close(self) -> None:
        with self._lock:
            self._backend.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self._backend.placeholder) if self._backend.placeholder != "?" else sql

    def _query(self, sql: str, args: Iterable = ()) -> list:
        """One statement outside a transaction; a connection lost since the last call (the
        server restarted) is reopened once and the statement retried (reads and idempotent writes)."""
        with self._lock, self._unreachable_as_unavailable():
            try:
                return self._backend.execute(self._sql(sql), args)
            except self._backend.unreachable:
                return self._backend.execute(self._sql(sql), args)

    @contextmanager
    def _writing(self):
        """A transaction holding the process's lock; yields (execute, executemany)."""
        with self._lock, self._unreachable_as_unavailable(), self._backend.transaction():
            yield (lambda sql, args=(): self._backend.execute(self._sql(sql), args),
                   lambda sql, rows: self._backend.executemany(self._sql(sql), rows))

    @contextmanager
    def _unreachable_as_unavailable(self):
        try:
            yield
        except self._backend.unreachable as error:
            raise ReadModelUnavailable(f"the read model's database is unavailable: {str(error).strip()[:200]}") from error

    # -- writes (the workflow's record_progress step, and reconciliation with the runtime) -----
    def apply(self, record: ProgressRecord) -> bool:
        """Merges the record's fields into the ticket's row if it is newer than what the row
        holds, and adds its events (each key once). True when the row changed. One upsert, so
        two replicas applying records of one ticket at once keep the highest seq."""
        fields = {k: v for k, v in record.progress.model_dump(exclude_none=True).items()}
        values = {k: (json.dumps(v) if k in JSON_COLUMNS else int(v) if k in BOOLEAN else v)
                  for k, v in fields.items()}
        if fields.get("stage") in FINAL_STAGES:
            values["status"] = "completed"  # the workflow's last record: it returns next
        names = ["ticket_id", "seq", "updated_at", *values]
        updates = ", ".join(f"{name} = excluded.{name}" for name in names[1:])
        with self._writing() as (execute, executemany):
            changed = execute(
                f"INSERT INTO tickets ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
                f"ON CONFLICT (ticket_id) DO UPDATE SET {updates} WHERE tickets.seq < excluded.seq "
                "RETURNING ticket_id",
                (record.ticket_id, record.seq, _now(), *values.values()))
            executemany(
                "INSERT INTO ticket_events (ticket_id, key, kind, actor, at, details) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (ticket_id, key) DO NOTHING",
                [(record.ticket_id, e.key, e.kind, e.actor, e.at, json.dumps(e.details)) for e in record.events])
            return bool(changed)

    def set_runtime_status(self, ticket_id: str, status: str, stage: str | None = None) -> None:
        """What the runtime says of the instance (running, completed, failed, terminated,
        suspended), for states the workflow cannot record itself."""
        with self._writing() as (execute, _):
            if stage is None:
                execute("UPDATE tickets SET status = ?, runtime_checked_at = ?, updated_at = ? "
                        "WHERE ticket_id = ?", (status, _now(), _now(), ticket_id))
            else:
                execute("UPDATE tickets SET status = ?, stage = ?, awaiting_decision = 0, "
                        "runtime_checked_at = ?, updated_at = ? WHERE ticket_id = ?",
                        (status, stage, _now(), _now(), ticket_id))

    def mark_checked(self, ticket_ids: Iterable[str]) -> None:
        with self._writing() as (_, executemany):
            executemany("UPDATE tickets SET runtime_checked_at = ? WHERE ticket_id = ?",
                        [(_now(), t) for t in ticket_ids])

    def forget(self, ticket_id: str) -> None:
        """The instance was purged from the runtime: the ticket no longer exists."""
        with self._writing() as (execute, _):
            execute("DELETE FROM tickets WHERE ticket_id = ?", (ticket_id,))
            execute("DELETE FROM ticket_events WHERE ticket_id = ?", (ticket_id,))

    def clear(self) -> None:
        with self._writing() as (execute, _):
            for table in ("tickets", "ticket_events", "meta"):
                execute(f"DELETE FROM {table}")

    def set_meta(self, name: str, value: str) -> None:
        self._query("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                    "SET value = excluded.value", (name, value))

    def get_meta(self, name: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE name = ?", (name,))
        return rows[0]["value"] if rows else None

    def wait_built(self, timeout: float, poll: float = 0.1) -> bool:
        """Whether the worker's sync has built it (app/readmodel/sync.py marks `built_at`),
        waiting up to `timeout` s. Once built it stays so for this process: a later rebuild only
        replaces rows."""
        deadline = time.monotonic() + timeout
        while not self._built:
            if self.get_meta("built_at") is not None:
                self._built = True
            elif time.monotonic() >= deadline:
                return False
            else:
                time.sleep(poll)
        return True

    # -- reads ---------------------------------------------------------------------------------
    def get(self, ticket_id: str) -> dict | None:
        rows = self._query("SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,))
        return _row(rows[0]) if rows else None

    def events(self, ticket_id: str) -> list[dict]:
        rows = self._query("SELECT key, kind, actor, at, details FROM ticket_events WHERE ticket_id = ? "
                           f"ORDER BY at, {self._backend.event_order}", (ticket_id,))
        return [{"key": r["key"], "kind": r["kind"], "actor": r["actor"], "at": r["at"],
                 "details": json.loads(r["details"])} for r in rows]

    def list(self, filters: dict[str, Any], limit: int, cursor: str | None = None,
             text: str | None = None) -> tuple[list[dict], str | None]:
        """Tickets newest first matching every filter (and the words of `text` in the id or
        description); the cursor continues after the last ticket of the previous page."""
        where, args = [], []
        for name, value in filters.items():
            if name not in FILTERABLE:
                raise ValueError(f"cannot filter on {name}")
            where.append(f"{name} = ?")
            args.append(int(value) if isinstance(value, bool) else value)
        for word in (text or "").split():
            where.append("(ticket_id LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')")
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [pattern, pattern]
        if cursor:
            filed_at, ticket_id = decode_cursor(cursor)
            where.append("(COALESCE(filed_at, '') < ? OR (COALESCE(filed_at, '') = ? AND ticket_id < ?))")
            args += [filed_at, filed_at, ticket_id]
        # NULL filed_at sorts last in both dialects (SQLite: NULLs are smallest; PostgreSQL: say so).
        sql = ("SELECT * FROM tickets" + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY filed_at DESC{self._nulls_last}, ticket_id DESC LIMIT ?")
        rows = self._query(sql, (*args, limit + 1))
        page = [_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return page, (encode_cursor(page[-1]["filed_at"], page[-1]["ticket_id"]) if more and page else None)

    @property
    def _nulls_last(self) -> str:
        return "" if isinstance(self._backend, _SQLite) else " NULLS LAST"

    def running(self, limit: int, checked_before: str, waiting: bool | None = None) -> list[str]:
        """Instances the read model thinks are running, least recently checked first; only those
        waiting for a decision (waiting=True) or only those with a step in flight (False)."""
        condition = "" if waiting is None else f" AND COALESCE(awaiting_decision, 0) = {int(waiting)}"
        rows = self._query(
            "SELECT ticket_id FROM tickets WHERE status IN ('running', 'suspended') AND "
            f"COALESCE(runtime_checked_at, '') < ?{condition} ORDER BY COALESCE(runtime_checked_at, '') LIMIT ?",
            (checked_before, limit))
        return [r["ticket_id"] for r in rows]

    def ticket_ids(self) -> set[str]:
        """Every ticket that has a row."""
        return {r["ticket_id"] for r in self._query("SELECT ticket_id FROM tickets", ())}

    def filed_before(self, before: str) -> list[str]:
        """Every ticket filed before `before` (ISO time), and those whose first record is not in
        yet: the rows a listing of the runtime's instances begun after it should include."""
        return [r["ticket_id"] for r in
                self._query("SELECT ticket_id FROM tickets WHERE COALESCE(filed_at, '') < ?", (before,))]

    def last_change(self, ticket_id: str | None = None) -> str:
        """A value that changes whenever a row (or that ticket's row) changes, is added or is
        removed: the console polls it to push updates."""
        if ticket_id is None:
            rows = self._query("SELECT MAX(updated_at) AS changed, COUNT(*) AS n FROM tickets")
        else:
            rows = self._query("SELECT MAX(updated_at) AS changed, COUNT(*) AS n FROM tickets "
                               "WHERE ticket_id = ?", (ticket_id,))
        return f"{rows[0]['changed'] or ''}/{rows[0]['n']}"

    def change_markers(self, ticket_ids: list[str]) -> dict[str, str]:
        """{ticket id: its row's `updated_at`} for the ids that have a row: one indexed read for
        every ticket the API's waiters watch (app/readmodel/ticket_changes.py)."""
        markers = {}
        for start in range(0, len(ticket_ids), 500):  # under every SQLite build's variable limit
            chunk = ticket_ids[start:start + 500]
            rows = self._query(f"SELECT ticket_id, updated_at FROM tickets WHERE ticket_id IN "
                               f"({', '.join('?' for _ in chunk)})", chunk)
            markers.update((row["ticket_id"], row["updated_at"]) for row in rows)
        return markers

    def positions(self, ticket_ids: list[str]) -> dict[str, tuple[str | None, int]]:
        """{ticket id: (recorded stage, revision)} for the ids the read model has (admission
        control asks)."""
        if not ticket_ids:
            return {}
        marks = ", ".join("?" for _ in ticket_ids)
        rows = self._query(f"SELECT ticket_id, stage, revision FROM tickets WHERE ticket_id IN ({marks})", ticket_ids)
        return {r["ticket_id"]: (r["stage"], r["revision"] or 0) for r in rows}

    def count(self) -> int:
        return self._query("SELECT COUNT(*) AS n FROM tickets")[0]["n"]


def _row(row) -> dict:
    item = dict(row)
    for name in BOOLEAN:
        if item.get(name) is not None:
            item[name] = bool(item[name])
    for name in JSON_COLUMNS:
        item[name] = json.loads(item[name]) if item.get(name) else []
    return item


def event(key: str, kind: str, actor: str, at: str, **details: Any) -> TimelineEvent:
    return TimelineEvent(key=key, kind=kind, actor=actor, at=at, details=details)
