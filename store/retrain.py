"""The retrain-batch queue: which accepted samples a retrain takes, and how it ended.

A retrain batch claims accepted samples by writing its id on them in one transaction,
so no sample is used twice or lost, and no source fills more than its share of a batch
(the rest of a flood waits for later batches). On PostgreSQL the claim locks the rows it
takes and skips rows another worker holds, so two workers never share a sample. Each
batch is leased to the worker that claimed it; a batch whose lease ran out (its worker
died) may be finished by another.

What waits is read a source at a time: the sources with accepted, unclaimed samples are
walked in order from where the last batch stopped (a loose scan of the feedback_queue
index, one seek per source), and each gives its oldest samples up to its share. So a
poll or a claim reads about a batch's worth of rows, however many samples wait: a
flood from one source that its share holds back for later batches costs nothing to
skip. The walk wraps around, so every source's turn comes.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable

from store.database import Database, Transaction
from store.samples import ACCEPTED, Sample

# How a retrain batch ended (retrain.outcome): the worker records it, the app counts it.
BLESSED, NOT_BLESSED, FAILED = "blessed", "not_blessed", "failed"
OUTCOMES = (BLESSED, NOT_BLESSED, FAILED)
# A failed retrain gives its samples back for a later batch (the failure may have had
# nothing to do with them); after this many failed batches a sample is no longer claimed.
MAX_ATTEMPTS = 2
# What one source may hold of one retrain batch, by default.
SOURCE_SHARE = 0.10
CHUNK = 500  # ids in one IN list
# The samples a batch may take, as the partial index feedback_queue (store/database.py)
# is defined: the query must say it in these words for the index to serve it.
WAITING = "status = 'accepted' AND batch_id IS NULL"
QUEUE_INDEX = "feedback_queue"
CURSOR = "retrain_queue_cursor"  # the setting that holds the last source a batch took from


def source_cap(batch_size: int, share: float) -> int:
    """How many samples of one source a batch of at least batch_size may hold (share 1:
    no cap)."""
    return max(1, math.floor(share * batch_size)) if share < 1 else sys.maxsize


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


class RetrainQueue:
    """known: the tags of the schema the worker's pipeline has; samples with other tags
    are never claimed (they would stop the run at the AnomaliesGate)."""

    # How many sources one look at the queue walks, at most, per sample of a batch.
    SOURCES_PER_SAMPLE = 4

    def __init__(self, db: Database, known: frozenset[str]) -> None:
        self.db, self.known = db, known

    def _sources(self, t: Transaction, start: str, limit: int) -> list[str]:
        """Up to `limit` sources with accepted, unclaimed samples, in order from just after
        `start`, wrapping around once: one index seek per source."""
        found: list[str] = []
        for after, until in ((start, None), ("", start)):
            queue = f"feedback {t.indexed_by(QUEUE_INDEX)}"
            rows = t.run(
                "WITH RECURSIVE walk(source) AS ("
                f" SELECT (SELECT source FROM {queue} WHERE {WAITING}"
                "  AND source > ? ORDER BY source LIMIT 1)"
                " UNION ALL"
                f" SELECT (SELECT source FROM {queue} WHERE {WAITING}"
                "  AND source > walk.source ORDER BY source LIMIT 1)"
                " FROM walk WHERE walk.source IS NOT NULL"
                ") SELECT source FROM walk WHERE source IS NOT NULL LIMIT ?",
                (after, limit - len(found)),
            ).fetchall()
            found += [s for (s,) in rows if until is None or s <= until]
            if len(found) >= limit or not start:
                break
        return list(dict.fromkeys(found))

    def _oldest(self, t: Transaction, source: str, cap: int, lock: bool) -> list[int]:
        """The source's oldest samples a batch may take, at most cap: accepted, unclaimed,
        not tried too often, and with tags this queue's schema has (the app may run a
        newer schema than the pipeline; such samples wait until the pipeline's has them)."""
        suffix = " FOR UPDATE SKIP LOCKED" if lock and self.db.dialect == "postgresql" else ""
        taken, offset, page = [], 0, max(cap, 8)
        while len(taken) < cap:
            rows = t.run(
                f"SELECT id, actual FROM feedback {t.indexed_by(QUEUE_INDEX)} "
                f"WHERE {WAITING} AND source = ? "
                f"AND attempts < ? ORDER BY id LIMIT ? OFFSET ?{suffix}",
                (source, MAX_ATTEMPTS, page, offset),
            ).fetchall()
            taken += [i for i, actual in rows if set(json.loads(actual)) <= self.known]
            if len(rows) < page:
                break
            offset += page
        return taken[:cap]

    def _candidates(
        self, t: Transaction, batch_size: int, share: float, lock: bool
    ) -> tuple[list[int], str]:
        """The samples a batch of batch_size would take now, each source up to its share,
        and the last source walked (where the next batch starts)."""
        cap = source_cap(batch_size, share)
        row = t.run("SELECT value FROM setting WHERE name = ?", (CURSOR,)).fetchone()
        start = row[0] if row else ""
        chosen, last = [], start
        for source in self._sources(t, start, self.SOURCES_PER_SAMPLE * batch_size):
            chosen += self._oldest(t, source, cap, lock)
            last = source
            if len(chosen) >= batch_size:
                break
        return chosen, last

    def claimable(self, batch_size: int = 1, share: float = 1.0) -> int:
        """How many accepted, unclaimed samples a batch of batch_size could take now,
        each source counted up to its share, counting no further than one batch."""
        with self.db.transaction() as t:
            chosen, _ = self._candidates(t, batch_size, share, lock=False)
        return len(chosen)

    def claim(
        self, batch_size: int = 1, share: float = 1.0, worker: str = "", lease_s: float = 0
    ) -> tuple[int, list[Sample]] | None:
        """Open a retrain batch of at least batch_size samples, no source holding more
        than share of it, in one transaction; None when not enough are claimable.
        worker and lease_s: the batch is this worker's to finish until the lease ends."""
        with self.db.transaction() as t:
            ids, last = self._candidates(t, batch_size, share, lock=True)
            if not ids or len(ids) < batch_size:
                return None
            now = time.time()
            (batch,) = t.run(
                "INSERT INTO retrain (claimed_at, samples, worker, lease_until) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (now, len(ids), worker, now + lease_s),
            ).fetchone()
            for part in _chunks(ids):
                t.run(
                    f"UPDATE feedback SET batch_id = ? WHERE id IN ({t.marks(len(part))})",
                    (batch, *part),
                )
            t.run(
                "INSERT INTO setting (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (CURSOR, last),
            )
        return batch, self.samples(batch)

    def take_unfinished(self, worker: str, lease_s: float) -> int | None:
        """The oldest unfinished batch this worker may finish: its own, or one whose
        lease has run out (its worker died); the lease is renewed to this worker."""
        now = time.time()
        mine_or_free = (
            "outcome IS NULL AND (worker = ? OR worker IS NULL OR lease_until IS NULL "
            "OR lease_until < ?)"
        )
        with self.db.transaction() as t:
            for (batch,) in t.run(
                f"SELECT id FROM retrain WHERE {mine_or_free} ORDER BY id", (worker, now)
            ).fetchall():
                taken = t.run(
                    "UPDATE retrain SET worker = ?, lease_until = ? WHERE id = ? AND "
                    + mine_or_free,
                    (worker, now + lease_s, batch, worker, now),
                )
                if taken.rowcount == 1:
                    return batch
        return None

    def samples(self, batch: int) -> list[Sample]:
        """The batch's samples still to be trained on (withdrawn ones left out)."""
        with self.db.transaction() as t:
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
        with self.db.transaction() as t:
            for part in _chunks(list(sample_ids)):
                t.run(
                    "UPDATE feedback SET batch_id = NULL, attempts = attempts + 1 WHERE "
                    f"batch_id = ? AND id IN ({t.marks(len(part))})",
                    (batch, *part),
                )

    def record_span(self, batch: int, span: int, sha256: str) -> None:
        with self.db.transaction() as t:
            t.run(
                "UPDATE retrain SET span = ?, span_sha256 = ? WHERE id = ?", (span, sha256, batch)
            )

    def record_outcome(
        self, batch: int, outcome: str, model_version: str | None, detail: str
    ) -> None:
        with self.db.transaction() as t:
            t.run(
                "UPDATE retrain SET outcome = ?, model_version = ?, detail = ?, finished_at = ? "
                "WHERE id = ?",
                (outcome, model_version, detail, time.time(), batch),
            )

    def outcome_counts(self) -> dict[str, int]:
        """How many batches ended each way (OUTCOMES); unfinished ones are not counted."""
        with self.db.transaction() as t:
            rows = t.run(
                "SELECT outcome, COUNT(*) FROM retrain WHERE outcome IS NOT NULL GROUP BY outcome"
            ).fetchall()
        return {**dict.fromkeys(OUTCOMES, 0), **dict(rows)}

    def batches(self) -> list[dict]:
        """Every batch, oldest first, with its span and outcome."""
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
        with self.db.transaction() as t:
            rows = t.run(f"SELECT {', '.join(keys)} FROM retrain ORDER BY id").fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]
