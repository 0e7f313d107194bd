"""The feedback store: SQLite (one file, WAL) by default, PostgreSQL for several app
instances. The same SQL runs on both; the schema is created and upgraded by versioned
migrations when a store opens.

    sqlite:///path/to/feedback.db        (or a plain path)
    postgresql://user:pass@host:5432/db

A sample's life: `accepted` (trainable), `pending_review` (carries a tag the model does
not know; waits for a person), `rejected`, or `duplicate` (the same title and tags came
before; stored, never trained twice). A retrain batch claims accepted samples by
writing its id on them in one transaction, so no sample is used twice or lost.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from contract import features
from serving.feedback.normalize import Feedback, FeedbackError, normalize_tag

ACCEPTED, PENDING, REJECTED, DUPLICATE = "accepted", "pending_review", "rejected", "duplicate"
# How a retrain batch ended (retrain.outcome): the worker records it, the app counts it.
BLESSED, NOT_BLESSED, FAILED = "blessed", "not_blessed", "failed"
OUTCOMES = (BLESSED, NOT_BLESSED, FAILED)

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
]
AUTO_ID = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgresql": "BIGSERIAL PRIMARY KEY"}


def known_tags(schema_path: Path) -> frozenset[str]:
    """The tags the model is trained on: the curated schema's `tags` domain."""
    schema = text_format.Parse(schema_path.read_text(), schema_pb2.Schema())
    (domain,) = [d for d in schema.string_domain if d.name == features.TAGS]
    return frozenset(domain.value)


@dataclasses.dataclass(frozen=True)
class Stored:
    id: int
    status: str
    duplicate_of: int | None
    unknown_tags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Sample:
    id: int
    title: str
    actual: tuple[str, ...]


class FeedbackStore:
    """Thread-safe: one connection, one lock; writes are batched by the caller if needed."""

    def __init__(self, url: str, known: frozenset[str]) -> None:
        self.known = known
        self.dialect, self._connection = _connect(url)
        self._lock = threading.Lock()
        self.migrate()

    # --- plumbing ----------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.dialect == "postgresql" else statement

    def _execute(self, cursor, statement: str, params: Iterable = ()):
        cursor.execute(self._sql(statement), tuple(params))
        return cursor

    def transaction(self) -> _Transaction:
        """`with store.transaction() as t: t.run(sql, params)`: one transaction, committed
        when the block ends and rolled back if it raises; one at a time per store."""
        return _Transaction(self)

    def schema_version(self) -> int:
        with self.transaction() as t:
            t.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = t.run("SELECT MAX(version) FROM schema_version").fetchone()
        return row[0] or 0

    def migrate(self, target: int = len(MIGRATIONS)) -> None:
        """Bring the schema to `target` (default: the newest), one version per transaction."""
        for version in range(self.schema_version() + 1, target + 1):
            with self.transaction() as t:
                for statement in MIGRATIONS[version - 1]:
                    t.run(statement.format(id=AUTO_ID[self.dialect]))
                t.run("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def close(self) -> None:
        self._connection.close()

    # --- writing feedback --------------------------------------------------------------

    def add_many(self, items: list[Feedback]) -> list[Stored]:
        """Store items in one transaction (one durable commit for all of them)."""
        with self.transaction() as t:
            return [self._add(t, item) for item in items]

    def add(self, item: Feedback) -> Stored:
        return self.add_many([item])[0]

    def _decisions(self, t, tags: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        tags = list(tags)
        if not tags:
            return {}
        marks = ",".join("?" * len(tags))
        rows = t.run(f"SELECT tag, status, alias_of FROM tag_review WHERE tag IN ({marks})", tags)
        return {tag: (status, alias) for tag, status, alias in rows.fetchall()}

    def _add(self, t, item: Feedback) -> Stored:
        kept, waiting = self._resolve(t, item.actual, now=time.time())
        status = PENDING if waiting else (ACCEPTED if kept else REJECTED)
        # A pending sample keeps the tags that wait, so a decision can resolve them later.
        key, actual_text = item.title_key, json.dumps(sorted(kept + waiting))
        first = t.run(
            "SELECT id FROM feedback WHERE title_key = ? AND actual = ? AND status <> ? "
            "ORDER BY id LIMIT 1",
            (key, actual_text, DUPLICATE),
        ).fetchone()
        duplicate_of = first[0] if first and status == ACCEPTED else None
        if duplicate_of is not None:
            status = DUPLICATE
        row = t.run(
            "INSERT INTO feedback (title, title_key, predicted, actual, model_version, "
            "received_at, status, duplicate_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (item.title, key, json.dumps(list(item.predicted)), actual_text,
             item.model_version, time.time(), status, duplicate_of),
        ).fetchone()  # fmt: skip
        return Stored(row[0], status, duplicate_of, tuple(waiting))

    def _resolve(self, t, tags: Iterable[str], now: float) -> tuple[list[str], list[str]]:
        """(tags after review decisions, tags still waiting for one). New unknown tags
        enter the review queue; rejected ones are dropped; aliases are followed."""
        tags = list(tags)
        decided = self._decisions(t, [tag for tag in tags if tag not in self.known])
        kept, waiting = [], []
        for tag in tags:
            if tag in self.known:
                kept.append(tag)
                continue
            status, alias = decided.get(tag, (None, None))
            if status is None:
                t.run("INSERT INTO tag_review (tag, status, first_seen) VALUES (?, ?, ?)",
                      (tag, PENDING, now))  # fmt: skip
                decided[tag] = (PENDING, None)
                status = PENDING
            if status == PENDING:
                waiting.append(tag)
            elif status == ACCEPTED:
                kept.append(alias or tag)
        return list(dict.fromkeys(kept)), waiting

    # --- review queue --------------------------------------------------------------------

    def review_queue(self) -> list[dict]:
        with self.transaction() as t:
            rows = t.run(
                "SELECT tag, status, alias_of, first_seen FROM tag_review ORDER BY first_seen"
            ).fetchall()
            pending = t.run("SELECT actual FROM feedback WHERE status = ?", (PENDING,)).fetchall()
        waiting: dict[str, int] = {}
        for (actual,) in pending:
            for tag in json.loads(actual):
                waiting[tag] = waiting.get(tag, 0) + 1
        return [
            {"tag": tag, "status": status, "alias_of": alias, "first_seen": seen,
             "samples_waiting": waiting.get(tag, 0)}
            for tag, status, alias, seen in rows
        ]  # fmt: skip

    def decide(self, tag: str, accept: bool, alias_of: str | None = None) -> int:
        """Accept (optionally as an alias of a known tag) or reject a tag in the queue;
        re-resolves the samples waiting on it. Returns how many samples changed status."""
        tag = normalize_tag(tag)
        if alias_of is not None:
            alias_of = normalize_tag(alias_of)
            if alias_of not in self.known:
                raise FeedbackError(f"{alias_of!r} is not a tag the model knows")
        with self.transaction() as t:
            found = t.run("SELECT status FROM tag_review WHERE tag = ?", (tag,)).fetchone()
            if found is None:
                raise KeyError(tag)
            t.run(
                "UPDATE tag_review SET status = ?, alias_of = ?, decided_at = ? WHERE tag = ?",
                (ACCEPTED if accept else REJECTED, alias_of, time.time(), tag),
            )
            changed = 0
            for sample_id, actual in t.run(
                "SELECT id, actual FROM feedback WHERE status = ?", (PENDING,)
            ).fetchall():
                tags = json.loads(actual)
                if tag not in tags:
                    continue
                kept, waiting = self._resolve(t, tags, now=time.time())
                if waiting:
                    continue
                status = ACCEPTED if kept else REJECTED
                t.run("UPDATE feedback SET status = ?, actual = ? WHERE id = ?",
                      (status, json.dumps(sorted(kept)), sample_id))  # fmt: skip
                changed += 1
        return changed

    # --- what the learning worker uses ---------------------------------------------------

    def claimable(self) -> int:
        """Accepted samples no retrain batch has claimed yet."""
        with self.transaction() as t:
            (count,) = t.run(
                "SELECT COUNT(*) FROM feedback WHERE status = ? AND batch_id IS NULL", (ACCEPTED,)
            ).fetchone()
        return count

    def claim(self) -> tuple[int, list[Sample]] | None:
        """Open a retrain batch holding every claimable sample, in one transaction."""
        with self.transaction() as t:
            ids = [row[0] for row in t.run(
                "SELECT id FROM feedback WHERE status = ? AND batch_id IS NULL ORDER BY id",
                (ACCEPTED,)).fetchall()]  # fmt: skip
            if not ids:
                return None
            (batch,) = t.run(
                "INSERT INTO retrain (claimed_at, samples) VALUES (?, ?) RETURNING id",
                (time.time(), len(ids)),
            ).fetchone()
            t.run("UPDATE feedback SET batch_id = ? WHERE status = ? AND batch_id IS NULL "
                  f"AND id <= {int(ids[-1])}", (batch, ACCEPTED))  # fmt: skip
        return batch, self.samples(batch)

    def samples(self, batch: int) -> list[Sample]:
        with self.transaction() as t:
            rows = t.run("SELECT id, title, actual FROM feedback WHERE batch_id = ? ORDER BY id",
                         (batch,)).fetchall()  # fmt: skip
        return [Sample(i, title, tuple(json.loads(actual))) for i, title, actual in rows]

    def unfinished_batches(self) -> list[dict]:
        with self.transaction() as t:
            rows = t.run(
                "SELECT id, span FROM retrain WHERE outcome IS NULL ORDER BY id"
            ).fetchall()
        return [{"id": i, "span": span} for i, span in rows]

    def record_span(self, batch: int, span: int, sha256: str) -> None:
        with self.transaction() as t:
            t.run(
                "UPDATE retrain SET span = ?, span_sha256 = ? WHERE id = ?", (span, sha256, batch)
            )

    def record_outcome(self, batch: int, outcome: str, model_version: str | None, detail: str):
        with self.transaction() as t:
            t.run("UPDATE retrain SET outcome = ?, model_version = ?, detail = ?, finished_at = ? "
                  "WHERE id = ?", (outcome, model_version, detail, time.time(), batch))  # fmt: skip

    def batches(self) -> list[dict]:
        with self.transaction() as t:
            rows = t.run("SELECT id, samples, span, span_sha256, outcome, model_version, "
                         "claimed_at, finished_at FROM retrain ORDER BY id").fetchall()  # fmt: skip
        keys = ("id", "samples", "span", "span_sha256", "outcome", "model_version", "claimed_at",
                "finished_at")  # fmt: skip
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def counts(self) -> dict[str, int]:
        with self.transaction() as t:
            rows = t.run("SELECT status, COUNT(*) FROM feedback GROUP BY status").fetchall()
        return {ACCEPTED: 0, PENDING: 0, REJECTED: 0, DUPLICATE: 0, **dict(rows)}


class _Transaction:
    def __init__(self, store: FeedbackStore) -> None:
        self.store = store

    def __enter__(self) -> _Transaction:
        self.store._lock.acquire()
        self.cursor = self.store._connection.cursor()
        if self.store.dialect == "sqlite":
            self.cursor.execute("BEGIN IMMEDIATE")
        return self

    def run(self, statement: str, params: Iterable = ()):
        return self.store._execute(self.cursor, statement, params)

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self.store._connection.commit()
            else:
                self.store._connection.rollback()
        finally:
            self.cursor.close()
            self.store._lock.release()


def _connect(url: str):
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg  # only for this store kind

        return "postgresql", psycopg.connect(url)
    path = url.removeprefix("sqlite://").removeprefix("/") if url.startswith("sqlite://") else url
    if url.startswith("sqlite:///"):
        path = "/" + url.removeprefix("sqlite:///")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")  # a 201 means the sample is on disk
    connection.execute("PRAGMA busy_timeout=10000")  # the worker and the app share the file
    return "sqlite", connection
