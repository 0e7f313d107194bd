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
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

CONNECT_TIMEOUT_S = 5.0
POOL_SIZE = 4
MIGRATION_LOCK = 7_261_001  # pg_advisory_xact_lock key: one instance migrates at a time

# Each migration moves the schema from version N-1 to N. {id} is the dialect's
# auto-increment primary key. Never edit one that has shipped: add the next.
MIGRATIONS: list[list[str]] = [
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
                for statement in MIGRATIONS[version - 1]:
                    t.run(statement.format(id=AUTO_ID[self.dialect]))
                t.run("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def setting(self, name: str, make: Callable[[], str]) -> str:
        """A value shared by every instance on this database, made once by make()."""
        with self.transaction() as t:
            t.run(
                "INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, make()),
            )
            return t.run("SELECT value FROM setting WHERE name = ?", (name,)).fetchone()[0]

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
