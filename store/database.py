"""The database: SQLite (one file, WAL) by default, PostgreSQL for several instances.

    sqlite:///path/to/feedback.db        (or a plain path)
    postgresql://user:pass@host:5432/db

The same SQL runs on both, written with `?` placeholders; the schema is created and
upgraded by versioned migrations when a database opens. Every other module of the store
runs its statements through `Database.transaction()`.

PostgreSQL is reached through a pool that checks each connection before handing it
out, gives up on a connect after a timeout and reconnects with backoff: a database
restart costs the requests in flight a StoreUnavailableError (503), never the process.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

CONNECT_TIMEOUT_S = 5.0
POOL_SIZE = 4
MIGRATION_LOCK = 7_261_001  # pg_advisory_xact_lock key: one instance migrates at a time


def _tallies(t: Transaction) -> None:
    """Migration 5's backfill of the samples by status (store/feedback.py keeps it)."""
    for status, count in t.run("SELECT status, COUNT(*) FROM feedback GROUP BY status").fetchall():
        t.run("INSERT INTO status_tally (status, samples) VALUES (?, ?)", (status, count))


def _waiting_tags(t: Transaction) -> None:
    """Migration 5's backfill: one waiting_tag row for each tag a pending sample waits on
    (a tag still in review, or accepted without an alias and not yet in the schema)."""
    undecided = {
        tag
        for (tag,) in t.run(
            "SELECT tag FROM tag_review WHERE status = 'pending_review' "
            "OR (status = 'accepted' AND alias_of IS NULL)"
        ).fetchall()
    }
    rows = t.run(
        "SELECT id, source, actual FROM feedback WHERE status = 'pending_review'"
    ).fetchall()
    for sample_id, source, actual in rows:
        for tag in sorted(undecided.intersection(json.loads(actual))):
            t.run(
                "INSERT INTO waiting_tag (tag, sample_id, source) VALUES (?, ?, ?)",
                (tag, sample_id, source),
            )


# Each migration moves the schema from version N-1 to N: SQL statements, where {id} is
# the dialect's auto-increment primary key, or a function of the transaction for what
# SQL alone cannot do. Never edit one that has shipped: add the next.
MIGRATIONS: list[list[str | Callable[[Transaction], None]]] = [
    [  # 1: samples, tags awaiting review, retrain batches
        """CREATE TABLE feedback (
            id {id}, title TEXT NOT NULL, title_key TEXT NOT NULL, predicted TEXT NOT NULL,
            actual TEXT NOT NULL, model_version TEXT, received_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL, duplicate_of BIGINT, batch_id BIGINT)""",
        "CREATE INDEX feedback_same ON feedback (title_key, actual)",
        "CREATE INDEX feedback_claimable ON feedback (status, batch_id)",
        """CREATE TABLE tag_review (
            tag TEXT PRIMARY KEY, status TEXT NOT NULL, first_seen DOUBLE PRECISION NOT NULL,
            decided_at DOUBLE PRECISION)""",
        """CREATE TABLE retrain (
            id {id}, claimed_at DOUBLE PRECISION NOT NULL, samples INTEGER NOT NULL,
            span INTEGER, span_sha256 TEXT, finished_at DOUBLE PRECISION, outcome TEXT,
            model_version TEXT, detail TEXT)""",
    ],
    [  # 2: an accepted unknown tag may stand for a tag the model knows
        "ALTER TABLE tag_review ADD COLUMN alias_of TEXT",
    ],
    [  # 3: where samples came from, access tokens, withdrawn sources, worker leases
        "ALTER TABLE feedback ADD COLUMN source TEXT NOT NULL DEFAULT 'unknown'",
        "ALTER TABLE feedback ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE feedback ADD COLUMN served_version TEXT",
        "CREATE INDEX feedback_source ON feedback (source, status)",
        "ALTER TABLE tag_review ADD COLUMN source TEXT",
        "ALTER TABLE tag_review ADD COLUMN decided_by TEXT",
        """CREATE TABLE api_token (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION)""",
        """CREATE TABLE source_withdrawal (
            source TEXT NOT NULL, withdrawn_at DOUBLE PRECISION NOT NULL,
            reason TEXT NOT NULL, samples INTEGER NOT NULL, withdrawn_by TEXT)""",
        "CREATE TABLE setting (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "ALTER TABLE retrain ADD COLUMN worker TEXT",
        "ALTER TABLE retrain ADD COLUMN lease_until DOUBLE PRECISION",
    ],
    [  # 4: releases: which versions are stable and canary, and what happened to each
        """CREATE TABLE rollout (
            model TEXT PRIMARY KEY, stable TEXT, canary TEXT, previous TEXT,
            mode TEXT NOT NULL, share DOUBLE PRECISION NOT NULL, stage INTEGER NOT NULL,
            stage_since DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE rollout_version (
            model TEXT NOT NULL, version TEXT NOT NULL, status TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL, PRIMARY KEY (model, version))""",
        """CREATE TABLE rollout_event (
            id {id}, model TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, version TEXT NOT NULL,
            action TEXT NOT NULL, reason TEXT NOT NULL, checks TEXT NOT NULL,
            actor TEXT NOT NULL)""",
        "CREATE INDEX feedback_served ON feedback (served_version, source)",
    ],
    [  # 5: every query the app and the worker repeat reads a bounded number of rows
        # The samples a retrain batch may take, by source: the retrain queue walks the
        # sources and takes each one's oldest (store/retrain.py). Partial, so it holds
        # the waiting samples only, and its queries name its condition as written here.
        "CREATE INDEX feedback_queue ON feedback (source, id) "
        "WHERE status = 'accepted' AND batch_id IS NULL",
        # Samples by status, kept in the transactions that change them (store/feedback.py):
        # counting a million rows on every scrape would not be.
        "CREATE TABLE status_tally (status TEXT PRIMARY KEY, samples BIGINT NOT NULL)",
        _tallies,
        # Live quality reads each version's newest samples (store/live_quality.py).
        "CREATE INDEX feedback_version ON feedback (served_version, id)",
        # The tags each pending sample waits on, so a review page or a decision reads
        # only the samples it concerns (store/review.py).
        """CREATE TABLE waiting_tag (
            tag TEXT NOT NULL, sample_id BIGINT NOT NULL, source TEXT NOT NULL,
            PRIMARY KEY (tag, sample_id))""",
        "CREATE INDEX waiting_tag_source ON waiting_tag (tag, source)",
        "CREATE INDEX waiting_tag_sample ON waiting_tag (sample_id)",
        _waiting_tags,
    ],
]
AUTO_ID = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgresql": "BIGSERIAL PRIMARY KEY"}


class StoreUnavailableError(RuntimeError):
    """The database cannot be reached or dropped the connection (HTTP 503: retry)."""


class Transaction:
    """Statements of one transaction, written with `?` placeholders for both dialects."""

    def __init__(self, cursor, dialect: str) -> None:
        self.cursor, self.dialect = cursor, dialect

    def run(self, statement: str, params: Iterable = ()):
        if self.dialect == "postgresql":
            statement = statement.replace("?", "%s")
        self.cursor.execute(statement, tuple(params))
        return self.cursor

    def marks(self, count: int) -> str:
        """`?, ?, ...`: the placeholders of an IN list of `count` values."""
        return ",".join("?" * count)

    def indexed_by(self, index: str) -> str:
        """After a table name: the index a query is written for. SQLite's planner, with
        no statistics on a young database, may pick another (`INDEXED BY` makes it take
        this one); PostgreSQL's finds it by itself."""
        return f"INDEXED BY {index}" if self.dialect == "sqlite" else ""


class Database:
    """An open database, migrated to the newest schema. Thread-safe."""

    def __init__(self, url: str, migrate: bool = True) -> None:
        self.dialect, self._backend = _connect(url)
        if migrate:
            self.migrate()

    def transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """`with db.transaction() as t: t.run(sql, params)`: one transaction, committed
        when the block ends and rolled back if it raises."""
        return self._backend.transaction(self.dialect)

    def ping(self) -> None:
        """Raises StoreUnavailableError unless the database answers now."""
        with self.transaction() as t:
            t.run("SELECT 1").fetchone()

    def schema_version(self) -> int:
        with self.transaction() as t:
            return self._schema_version(t)

    @staticmethod
    def _schema_version(t: Transaction) -> int:
        t.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        return t.run("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0

    def migrate(self, target: int = len(MIGRATIONS)) -> None:
        """Bring the schema to `target` (default: the newest), one version per transaction.
        Instances starting together wait for each other (an advisory lock on PostgreSQL,
        SQLite's write lock), and each applies only what is still missing."""
        for version in range(self.schema_version() + 1, target + 1):
            with self.transaction() as t:
                if self.dialect == "postgresql":
                    t.run(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                if self._schema_version(t) >= version:
                    continue
                for step in MIGRATIONS[version - 1]:
                    if callable(step):
                        step(t)
                    else:
                        t.run(step.format(id=AUTO_ID[self.dialect]))
                t.run("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def setting(self, name: str, make: Callable[[], str]) -> str:
        """A value shared by every instance on this database, made once by make()."""
        with self.transaction() as t:
            t.run(
                "INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, make()),
            )
            return t.run("SELECT value FROM setting WHERE name = ?", (name,)).fetchone()[0]

    def get_setting(self, name: str) -> str | None:
        with self.transaction() as t:
            row = t.run("SELECT value FROM setting WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def put_setting(self, name: str, value: str) -> None:
        with self.transaction() as t:
            t.run(
                "INSERT INTO setting (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def close(self) -> None:
        self._backend.close()


class _Sqlite:
    """One connection, one transaction at a time (SQLite has one writer anyway)."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")  # a 201 means the sample is on disk
        self.connection.execute("PRAGMA busy_timeout=10000")  # the worker shares the file
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self, dialect: str) -> Iterator[Transaction]:
        with self.lock:
            cursor = self.connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(cursor, dialect)
                self.connection.commit()
            except BaseException:
                self.connection.rollback()
                raise
            finally:
                cursor.close()

    def close(self) -> None:
        self.connection.close()


class _Postgres:
    def __init__(self, url: str) -> None:
        import psycopg  # only for this store kind
        import psycopg_pool

        self.errors = (psycopg.OperationalError, psycopg_pool.PoolTimeout)
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            timeout=CONNECT_TIMEOUT_S,
            check=psycopg_pool.ConnectionPool.check_connection,
            kwargs={"connect_timeout": math.ceil(CONNECT_TIMEOUT_S)},
            reconnect_timeout=24 * 3600,  # keep trying, backing off, for as long as it takes
        )
        try:
            self.pool.open(wait=True, timeout=3 * CONNECT_TIMEOUT_S)
        except self.errors as err:
            self.pool.close()
            raise StoreUnavailableError(f"cannot connect to the feedback store: {err}") from err

    @contextlib.contextmanager
    def transaction(self, dialect: str) -> Iterator[Transaction]:
        try:
            # The pool's context commits when the block ends and rolls back if it raises;
            # a connection found broken is discarded and replaced in the background.
            with self.pool.connection() as connection, connection.cursor() as cursor:
                yield Transaction(cursor, dialect)
        except self.errors as err:
            raise StoreUnavailableError(f"the feedback store is unavailable: {err}") from err

    def close(self) -> None:
        self.pool.close()


def _connect(url: str) -> tuple[str, _Sqlite | _Postgres]:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql", _Postgres(url)
    path = url.removeprefix("sqlite://").removeprefix("/") if url.startswith("sqlite://") else url
    if url.startswith("sqlite:///"):
        path = "/" + url.removeprefix("sqlite:///")
    return "sqlite", _Sqlite(path)
