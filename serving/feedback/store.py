"""The feedback store: SQLite (one file, WAL) by default, PostgreSQL for several app
instances. The same SQL runs on both; the schema is created and upgraded by versioned
migrations when a store opens.

    sqlite:///path/to/feedback.db        (or a plain path)
    postgresql://user:pass@host:5432/db

A sample's life: `accepted` (trainable), `pending_review` (carries a tag the model does
not know; waits for a person), `rejected`, `duplicate` (the same title and tags came
before; stored, never trained twice) or `withdrawn` (its source was taken out). Each
sample records its source (who sent it), its time, the model version the client says
answered it, and the version the app was serving when it arrived.

A retrain batch claims accepted samples by writing its id on them in one transaction,
so no sample is used twice or lost, and no source fills more than its share of a batch
(the rest of a flood waits for later batches). On PostgreSQL the claim locks the rows it
takes and skips rows another worker holds, so two workers never share a sample.

PostgreSQL is reached through a pool that checks each connection before handing it
out, gives up on a connect after a timeout and reconnects with backoff: a database
restart costs the requests in flight a StoreUnavailableError (503), never the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from contract import features
from serving.feedback.normalize import Feedback, FeedbackError, normalize_tag

ACCEPTED, PENDING, REJECTED, DUPLICATE = "accepted", "pending_review", "rejected", "duplicate"
WITHDRAWN = "withdrawn"
STATUSES = (ACCEPTED, PENDING, REJECTED, DUPLICATE, WITHDRAWN)
# How a retrain batch ended (retrain.outcome): the worker records it, the app counts it.
BLESSED, NOT_BLESSED, FAILED = "blessed", "not_blessed", "failed"
OUTCOMES = (BLESSED, NOT_BLESSED, FAILED)
# A failed retrain gives its samples back for a later batch (the failure may have had
# nothing to do with them); after this many failed batches a sample is no longer claimed.
MAX_ATTEMPTS = 2
# Defaults for what one source may hold: its share of one retrain batch, and how many of
# its samples may wait for review at once.
SOURCE_SHARE = 0.10
REVIEW_PER_SOURCE = 50
# Samples of one source that count towards a version's live quality (the newest ones).
LIVE_PER_SOURCE = 20
CONNECT_TIMEOUT_S = 5.0
POOL_SIZE = 4

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
MIGRATION_LOCK = 7_261_001  # pg_advisory_xact_lock key: one app migrates at a time


@dataclasses.dataclass(frozen=True)
class LiveQuality:
    """A served version's decisions against what people corrected them to.

    F1 micro is a ratio over samples, sum(2 TP) / sum(2 TP + FP + FN); squares holds
    sum(x^2), sum(x d), sum(d^2) of each sample's x = 2 TP and d = 2 TP + FP + FN, what
    its spread over samples needs (f1_variance): a sample's tags rise and fall together,
    so they are not independent trials."""

    samples: int
    true_positives: int
    false_positives: int
    false_negatives: int
    squares: tuple[float, float, float] = dataclasses.field(default=(0.0, 0.0, 0.0), compare=False)

    @classmethod
    def of(cls, counts: list[tuple[int, int, int]]) -> LiveQuality:
        """From each sample's (TP, FP, FN)."""
        xs = [2 * tp for tp, _, _ in counts]
        ds = [2 * tp + fp + fn for tp, fp, fn in counts]
        xd = sum(x * d for x, d in zip(xs, ds, strict=True))
        squares = (float(sum(x * x for x in xs)), float(xd), float(sum(d * d for d in ds)))
        return cls(
            len(counts),
            sum(c[0] for c in counts),
            sum(c[1] for c in counts),
            sum(c[2] for c in counts),
            squares,
        )

    @property
    def f1_variance(self) -> float:
        """The ratio estimator's variance over samples (delta method):
        n / (n - 1) * sum((x - F1 d)^2) / sum(d)^2."""
        total = 2 * self.true_positives + self.false_positives + self.false_negatives
        if self.samples < 2 or not total:
            return 0.0
        xx, xd, dd = self.squares
        r = self.f1
        residual = max(0.0, xx - 2 * r * xd + r * r * dd)
        return self.samples / (self.samples - 1) * residual / total**2

    @property
    def precision(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float:
        tp = 2 * self.true_positives
        return tp / max(1, tp + self.false_positives + self.false_negatives)


class StoreUnavailableError(RuntimeError):
    """The database cannot be reached or dropped the connection (HTTP 503: retry)."""


def known_tags(schema_path: Path) -> frozenset[str]:
    """The tags the model is trained on: the curated schema's `tags` domain."""
    schema = text_format.Parse(schema_path.read_text(), schema_pb2.Schema())
    (domain,) = [d for d in schema.string_domain if d.name == features.TAGS]
    return frozenset(domain.value)


@dataclasses.dataclass(frozen=True)
class Stored:
    id: int | None  # None: refused, nothing stored
    status: str
    duplicate_of: int | None
    unknown_tags: tuple[str, ...]
    refused: str | None = None  # why the source may not add this sample now


@dataclasses.dataclass(frozen=True)
class Sample:
    id: int
    title: str
    actual: tuple[str, ...]
    source: str = "unknown"


def source_cap(batch_size: int, share: float) -> int:
    """How many samples of one source a batch of at least batch_size may hold (share 1:
    no cap)."""
    return max(1, math.floor(share * batch_size)) if share < 1 else sys.maxsize


class FeedbackStore:
    """Thread-safe. known: the tags of the schema the model is trained on."""

    def __init__(
        self, url: str, known: frozenset[str], review_per_source: int = REVIEW_PER_SOURCE
    ) -> None:
        self.known = known
        self.review_per_source = review_per_source
        self.dialect, self._backend = _connect(url)
        self.migrate()
        self.release_known()

    # --- plumbing ----------------------------------------------------------------------

    def transaction(self) -> contextlib.AbstractContextManager[_Transaction]:
        """`with store.transaction() as t: t.run(sql, params)`: one transaction, committed
        when the block ends and rolled back if it raises."""
        return self._backend.transaction(self.dialect)

    def ping(self) -> None:
        """Raises StoreUnavailableError unless the database answers now."""
        with self.transaction() as t:
            t.run("SELECT 1").fetchone()

    def schema_version(self) -> int:
        with self.transaction() as t:
            return self._schema_version(t)

    def _schema_version(self, t: _Transaction) -> int:
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

    def setting(self, name: str, make) -> str:
        """A value shared by every instance on this store, made once by make()."""
        with self.transaction() as t:
            t.run(
                "INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, make()),
            )
            return t.run("SELECT value FROM setting WHERE name = ?", (name,)).fetchone()[0]

    def close(self) -> None:
        self._backend.close()

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
        unknown = [tag for tag in item.actual if tag not in self.known]
        if unknown and self._waiting_from(t, item.source) >= self.review_per_source:
            return Stored(
                None,
                PENDING,
                None,
                tuple(unknown),
                refused=f"{self.review_per_source} samples from this client already "
                "wait for review; send more once they are decided",
            )
        kept, waiting = self._resolve(t, item.actual, item.source, now=time.time())
        status = PENDING if waiting else (ACCEPTED if kept else REJECTED)
        # A pending sample keeps the tags that wait, so a decision can resolve them later.
        actual_text = json.dumps(sorted(kept + waiting))
        duplicate_of = None
        if status == ACCEPTED:
            duplicate_of = self._first_same(t, item.title_key, actual_text)
        if duplicate_of is not None:
            status = DUPLICATE
        row = t.run(
            "INSERT INTO feedback (title, title_key, predicted, actual, model_version, "
            "received_at, status, duplicate_of, source, served_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                item.title,
                item.title_key,
                json.dumps(list(item.predicted)),
                actual_text,
                item.model_version,
                time.time(),
                status,
                duplicate_of,
                item.source,
                item.served_version,
            ),
        ).fetchone()
        return Stored(row[0], status, duplicate_of, tuple(waiting))

    def _first_same(self, t, title_key: str, actual_text: str, before: int | None = None):
        """The first trainable sample with this title and these tags (before id `before`)."""
        found = t.run(
            "SELECT id FROM feedback WHERE title_key = ? AND actual = ? AND status IN (?, ?) "
            + ("AND id < ? " if before is not None else "")
            + "ORDER BY id LIMIT 1",
            (title_key, actual_text, ACCEPTED, PENDING, *([before] if before is not None else [])),
        ).fetchone()
        return found[0] if found else None

    def _waiting_from(self, t, source: str) -> int:
        return t.run(
            "SELECT COUNT(*) FROM feedback WHERE source = ? AND status = ?", (source, PENDING)
        ).fetchone()[0]

    def _resolve(
        self, t, tags: Iterable[str], source: str | None, now: float
    ) -> tuple[list[str], list[str]]:
        """(tags after review decisions, tags still waiting for one). New unknown tags
        enter the review queue; rejected ones are dropped; aliases are followed. A tag
        accepted without an alias waits until the schema has it: the model's tag
        vocabulary changes only by a reviewed change to schema/schema.pbtxt and the tag
        count (docs/feedback.md), never by a decision in the queue alone."""
        tags = list(tags)
        decided = self._decisions(t, [tag for tag in tags if tag not in self.known])
        kept, waiting = [], []
        for tag in tags:
            if tag in self.known:
                kept.append(tag)
                continue
            status, alias = decided.get(tag, (None, None))
            if status is None:
                # Two instances may add the same new tag at once: the first row wins.
                t.run(
                    "INSERT INTO tag_review (tag, status, first_seen, source) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (tag) DO NOTHING",
                    (tag, PENDING, now, source),
                )
                decided[tag] = (PENDING, None)
                status = PENDING
            if status == ACCEPTED and alias:
                kept.append(alias)
            elif status in (PENDING, ACCEPTED):
                waiting.append(tag)
        return list(dict.fromkeys(kept)), waiting

    # --- review queue --------------------------------------------------------------------

    def review_queue(
        self,
        status: str | None = None,
        after: str | None = None,
        limit: int = 50,
        examples: int = 3,
    ) -> tuple[list[dict], str | None]:
        """One page of the queue in tag order: (rows, the `after` of the next page or
        None). Each row has the samples waiting on the tag, how many sources sent them,
        the sources that sent most, and a few example titles."""
        where, params = ["1 = 1"], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if after is not None:
            where.append("tag > ?")
            params.append(after)
        with self.transaction() as t:
            rows = t.run(
                "SELECT tag, status, alias_of, first_seen FROM tag_review WHERE "
                + " AND ".join(where)
                + f" ORDER BY tag LIMIT {int(limit) + 1}",
                params,
            ).fetchall()
            page = rows[:limit]
            pending = []
            if page:
                pending = t.run(
                    "SELECT title, actual, source FROM feedback WHERE status = ? ORDER BY id",
                    (PENDING,),
                ).fetchall()
        on_page = {row[0] for row in page}
        waiting: dict[str, list[tuple[str, str]]] = {tag: [] for tag in on_page}
        for title, actual, source in pending:
            for tag in json.loads(actual):
                if tag in on_page:
                    waiting[tag].append((title, source))
        result = []
        for tag, state, alias, seen in page:
            sources: dict[str, int] = {}
            for _, source in waiting[tag]:
                sources[source] = sources.get(source, 0) + 1
            top = sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            result.append(
                {
                    "tag": tag,
                    "status": state,
                    "alias_of": alias,
                    "first_seen": seen,
                    "in_schema": tag in self.known,
                    "samples_waiting": len(waiting[tag]),
                    "sources": len(sources),
                    "top_sources": [{"source": s, "samples": n} for s, n in top],
                    "examples": list(dict.fromkeys(title for title, _ in waiting[tag]))[:examples],
                }
            )
        return result, (page[-1][0] if len(rows) > limit else None)

    def decide(
        self, tag: str, accept: bool, alias_of: str | None = None, by: str | None = None
    ) -> int:
        """Accept (optionally as an alias of a known tag) or reject a tag in the queue;
        re-resolves the samples waiting on it. Returns how many samples changed status.
        by: who decided, kept with the decision."""
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
                "UPDATE tag_review SET status = ?, alias_of = ?, decided_at = ?, decided_by = ? "
                "WHERE tag = ?",
                (ACCEPTED if accept else REJECTED, alias_of, time.time(), by, tag),
            )
            return self._release(t, lambda tags: tag in tags)

    def release_known(self) -> int:
        """Re-resolve waiting samples whose tags the schema now has (a reviewed vocabulary
        change adds them); returns how many were released. Only the queue's undecided or
        alias-less accepted tags can have joined the schema, so nothing else is read."""
        with self.transaction() as t:
            rows = t.run(
                "SELECT tag FROM tag_review WHERE status IN (?, ?) AND alias_of IS NULL",
                (PENDING, ACCEPTED),
            ).fetchall()
            joined = {tag for (tag,) in rows if tag in self.known}
            if not joined:
                return 0
            return self._release(t, lambda tags: not joined.isdisjoint(tags))

    def _release(self, t, concerned) -> int:
        """Re-resolve the pending samples that concerned(tags) picks, oldest first; the
        duplicate check runs as it does for new feedback."""
        changed = 0
        for sample_id, title_key, actual in t.run(
            "SELECT id, title_key, actual FROM feedback WHERE status = ? ORDER BY id", (PENDING,)
        ).fetchall():
            tags = json.loads(actual)
            if not concerned(tags):
                continue
            kept, waiting = self._resolve(t, tags, None, now=time.time())
            if waiting:
                continue
            actual_text = json.dumps(sorted(kept))
            status, duplicate_of = (ACCEPTED if kept else REJECTED), None
            if kept:
                duplicate_of = self._first_same(t, title_key, actual_text, before=sample_id)
                status = DUPLICATE if duplicate_of is not None else ACCEPTED
            t.run(
                "UPDATE feedback SET status = ?, actual = ?, duplicate_of = ? WHERE id = ?",
                (status, actual_text, duplicate_of, sample_id),
            )
            changed += 1
        return changed

    # --- sources ---------------------------------------------------------------------------

    def sources(self) -> list[dict]:
        """Every source with its samples by status and when it last sent one, most first."""
        with self.transaction() as t:
            rows = t.run(
                "SELECT source, status, COUNT(*), MAX(received_at) FROM feedback "
                "GROUP BY source, status"
            ).fetchall()
        found: dict[str, dict] = {}
        for source, status, count, last in rows:
            entry = found.setdefault(
                source,
                {"source": source, "samples": 0, "last_seen": 0.0, **{s: 0 for s in STATUSES}},
            )
            entry[status] = count
            entry["samples"] += count
            entry["last_seen"] = max(entry["last_seen"], last)
        return sorted(found.values(), key=lambda e: (-e["samples"], e["source"]))

    def withdraw_source(self, source: str, reason: str, by: str | None = None) -> dict:
        """Take every sample of `source` out of training: waiting ones never get claimed,
        and batches that already hold some are listed by withdrawn_in_batches() so
        the worker replaces their spans. Returns counts of what was withdrawn."""
        with self.transaction() as t:
            waiting, claimed = t.run(
                "SELECT SUM(CASE WHEN batch_id IS NULL THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN batch_id IS NULL THEN 0 ELSE 1 END) FROM feedback "
                "WHERE source = ? AND status <> ?",
                (source, WITHDRAWN),
            ).fetchone()
            waiting, claimed = waiting or 0, claimed or 0
            t.run(
                "UPDATE feedback SET status = ? WHERE source = ? AND status <> ?",
                (WITHDRAWN, source, WITHDRAWN),
            )
            t.run(
                "INSERT INTO source_withdrawal (source, withdrawn_at, reason, samples, "
                "withdrawn_by) VALUES (?, ?, ?, ?, ?)",
                (source, time.time(), reason, waiting + claimed, by),
            )
        return {"source": source, "waiting": waiting, "in_batches": claimed}

    def withdrawn_in_batches(self) -> dict[int, set[int]]:
        """Batches whose span has been written, and the ids of their withdrawn samples."""
        with self.transaction() as t:
            rows = t.run(
                "SELECT f.batch_id, f.id FROM feedback f JOIN retrain r ON r.id = f.batch_id "
                "WHERE f.status = ? AND r.span IS NOT NULL ORDER BY f.batch_id",
                (WITHDRAWN,),
            ).fetchall()
        found: dict[int, set[int]] = {}
        for batch, sample_id in rows:
            found.setdefault(batch, set()).add(sample_id)
        return found

    # --- what the learning worker uses ---------------------------------------------------

    def _eligible(self, t, lock: bool) -> list[tuple[int, str]]:
        """(id, source) of samples a batch may take: accepted, unclaimed, not tried too
        often, and with tags this store's schema has (the app may run a newer schema
        than the pipeline; such samples wait until the pipeline's has their tags)."""
        suffix = " FOR UPDATE SKIP LOCKED" if lock and self.dialect == "postgresql" else ""
        rows = t.run(
            "SELECT id, source, actual FROM feedback WHERE status = ? AND batch_id IS NULL "
            "AND attempts < ? ORDER BY id" + suffix,
            (ACCEPTED, MAX_ATTEMPTS),
        ).fetchall()
        return [(i, source) for i, source, actual in rows if set(json.loads(actual)) <= self.known]

    @staticmethod
    def _capped(rows: list[tuple[int, str]], cap: int) -> list[int]:
        taken: dict[str, int] = {}
        chosen = []
        for sample_id, source in rows:
            if taken.get(source, 0) < cap:
                taken[source] = taken.get(source, 0) + 1
                chosen.append(sample_id)
        return chosen

    def claimable(self, batch_size: int = 1, share: float = 1.0) -> int:
        """Accepted, unclaimed samples a batch could take now, each source counted up to
        its share of a batch of batch_size."""
        with self.transaction() as t:
            rows = self._eligible(t, lock=False)
        return len(self._capped(rows, source_cap(batch_size, share)))

    def claim(
        self, batch_size: int = 1, share: float = 1.0, worker: str = "", lease_s: float = 0
    ) -> tuple[int, list[Sample]] | None:
        """Open a retrain batch of at least batch_size samples, no source holding more
        than share of it, in one transaction; None when not enough are claimable.
        worker and lease_s: the batch is this worker's to finish until the lease ends."""
        with self.transaction() as t:
            ids = self._capped(self._eligible(t, lock=True), source_cap(batch_size, share))
            if not ids or len(ids) < batch_size:
                return None
            now = time.time()
            (batch,) = t.run(
                "INSERT INTO retrain (claimed_at, samples, worker, lease_until) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (now, len(ids), worker, now + lease_s),
            ).fetchone()
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                t.run(
                    f"UPDATE feedback SET batch_id = ? WHERE id IN ({','.join('?' * len(part))})",
                    (batch, *part),
                )
        return batch, self.samples(batch)

    def take_unfinished(self, worker: str, lease_s: float) -> int | None:
        """The oldest unfinished batch this worker may finish: its own, or one whose
        lease has run out (its worker died); the lease is renewed to this worker."""
        now = time.time()
        with self.transaction() as t:
            for (batch,) in t.run(
                "SELECT id FROM retrain WHERE outcome IS NULL AND (worker = ? OR worker IS NULL "
                "OR lease_until IS NULL OR lease_until < ?) ORDER BY id",
                (worker, now),
            ).fetchall():
                taken = t.run(
                    "UPDATE retrain SET worker = ?, lease_until = ? WHERE id = ? AND outcome IS "
                    "NULL AND (worker = ? OR worker IS NULL OR lease_until IS NULL OR "
                    "lease_until < ?)",
                    (worker, now + lease_s, batch, worker, now),
                )
                if taken.rowcount == 1:
                    return batch
        return None

    def samples(self, batch: int) -> list[Sample]:
        """The batch's samples still to be trained on (withdrawn ones left out)."""
        with self.transaction() as t:
            rows = t.run(
                "SELECT id, title, actual, source FROM feedback WHERE batch_id = ? "
                "AND status = ? ORDER BY id",
                (batch, ACCEPTED),
            ).fetchall()
        return [
            Sample(i, title, tuple(json.loads(actual)), source) for i, title, actual, source in rows
        ]

    def give_back(self, batch: int, sample_ids: Iterable[int]) -> None:
        """Return samples of a batch for a later one (counted as an attempt)."""
        ids = list(sample_ids)
        with self.transaction() as t:
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                t.run(
                    "UPDATE feedback SET batch_id = NULL, attempts = attempts + 1 WHERE "
                    f"batch_id = ? AND id IN ({','.join('?' * len(part))})",
                    (batch, *part),
                )

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
            t.run(
                "UPDATE retrain SET outcome = ?, model_version = ?, detail = ?, finished_at = ? "
                "WHERE id = ?",
                (outcome, model_version, detail, time.time(), batch),
            )

    def batches(self) -> list[dict]:
        with self.transaction() as t:
            rows = t.run(
                "SELECT id, samples, span, span_sha256, outcome, model_version, "
                "claimed_at, finished_at FROM retrain ORDER BY id"
            ).fetchall()
        keys = (
            "id",
            "samples",
            "span",
            "span_sha256",
            "outcome",
            "model_version",
            "claimed_at",
            "finished_at",
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def live_quality(self, per_source: int = LIVE_PER_SOURCE) -> dict[str, LiveQuality]:
        """For each version the app served, its decisions against the corrected tags of
        the feedback naming it: withdrawn and rejected samples left out, and at most the
        newest per_source samples of each source, so no one client sets a version's score."""
        with self.transaction() as t:
            rows = t.run(
                "SELECT served_version, predicted, actual FROM (SELECT served_version, "
                "predicted, actual, ROW_NUMBER() OVER (PARTITION BY served_version, source "
                "ORDER BY id DESC) AS newest FROM feedback WHERE served_version IS NOT NULL "
                "AND status NOT IN (?, ?)) AS ranked WHERE newest <= ?",
                (WITHDRAWN, REJECTED, per_source),
            ).fetchall()
        found: dict[str, list[tuple[int, int, int]]] = {}
        for version, predicted_text, actual_text in rows:
            predicted, actual = set(json.loads(predicted_text)), set(json.loads(actual_text))
            found.setdefault(version, []).append(
                (len(predicted & actual), len(predicted - actual), len(actual - predicted))
            )
        return {version: LiveQuality.of(c) for version, c in sorted(found.items())}

    def counts(self) -> dict[str, int]:
        with self.transaction() as t:
            rows = t.run("SELECT status, COUNT(*) FROM feedback GROUP BY status").fetchall()
        return {**{status: 0 for status in STATUSES}, **dict(rows)}


class _Transaction:
    """Statements of one transaction, written with `?` placeholders for both dialects."""

    def __init__(self, cursor, dialect: str) -> None:
        self.cursor, self.dialect = cursor, dialect

    def run(self, statement: str, params: Iterable = ()):
        if self.dialect == "postgresql":
            statement = statement.replace("?", "%s")
        self.cursor.execute(statement, tuple(params))
        return self.cursor


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
    def transaction(self, dialect: str) -> Iterator[_Transaction]:
        with self.lock:
            cursor = self.connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield _Transaction(cursor, dialect)
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
    def transaction(self, dialect: str) -> Iterator[_Transaction]:
        try:
            # The pool's context commits when the block ends and rolls back if it raises;
            # a connection found broken is discarded and replaced in the background.
            with self.pool.connection() as connection, connection.cursor() as cursor:
                yield _Transaction(cursor, dialect)
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
