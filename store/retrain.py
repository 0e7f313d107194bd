"""The retrain-batch queue: which accepted samples a retrain takes, and how it ended.

A retrain batch claims accepted samples by writing its id on them in one transaction,
so no sample is used twice or lost, and no source fills more than its share of a batch
(the rest of a flood waits for later batches). On PostgreSQL the claim locks the rows it
takes and skips rows another worker holds, so two workers never share a sample. Each
batch is leased to the worker that claimed it; a batch whose lease ran out (its worker
died) may be finished by another.
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


def source_cap(batch_size: int, share: float) -> int:
    """How many samples of one source a batch of at least batch_size may hold (share 1:
    no cap)."""
    return max(1, math.floor(share * batch_size)) if share < 1 else sys.maxsize


def _capped(rows: list[tuple[int, str]], cap: int) -> list[int]:
    taken: dict[str, int] = {}
    chosen = []
    for sample_id, source in rows:
        if taken.get(source, 0) < cap:
            taken[source] = taken.get(source, 0) + 1
            chosen.append(sample_id)
    return chosen


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


class RetrainQueue:
    """known: the tags of the schema the worker's pipeline has; samples with other tags
    are never claimed (they would stop the run at the AnomaliesGate)."""

    def __init__(self, db: Database, known: frozenset[str]) -> None:
        self.db, self.known = db, known

    def _eligible(self, t: Transaction, lock: bool) -> list[tuple[int, str]]:
        """(id, source) of samples a batch may take: accepted, unclaimed, not tried too
        often, and with tags this store's schema has (the app may run a newer schema
        than the pipeline; such samples wait until the pipeline's has their tags)."""
        suffix = " FOR UPDATE SKIP LOCKED" if lock and self.db.dialect == "postgresql" else ""
        rows = t.run(
            "SELECT id, source, actual FROM feedback WHERE status = ? AND batch_id IS NULL "
            "AND attempts < ? ORDER BY id" + suffix,
            (ACCEPTED, MAX_ATTEMPTS),
        ).fetchall()
        return [(i, source) for i, source, actual in rows if set(json.loads(actual)) <= self.known]

    def claimable(self, batch_size: int = 1, share: float = 1.0) -> int:
        """Accepted, unclaimed samples a batch could take now, each source counted up to
        its share of a batch of batch_size."""
        with self.db.transaction() as t:
            rows = self._eligible(t, lock=False)
        return len(_capped(rows, source_cap(batch_size, share)))

    def claim(
        self, batch_size: int = 1, share: float = 1.0, worker: str = "", lease_s: float = 0
    ) -> tuple[int, list[Sample]] | None:
        """Open a retrain batch of at least batch_size samples, no source holding more
        than share of it, in one transaction; None when not enough are claimable.
        worker and lease_s: the batch is this worker's to finish until the lease ends."""
        with self.db.transaction() as t:
            ids = _capped(self._eligible(t, lock=True), source_cap(batch_size, share))
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
