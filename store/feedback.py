"""Storing feedback, and taking a source's feedback back out.

Each sample records its source (who sent it), its time, the model version the client
says answered it, and the version the app was serving when it arrived. Samples are
stored in groups, one durable commit for many concurrent requests. One source may keep
only so many samples waiting for review at once, so a flood of made-up tags cannot fill
the reviewers' queue.
"""

from __future__ import annotations

import json
import time

from store.database import Database, Transaction
from store.review import first_same, resolve, wait_on
from store.samples import (
    ACCEPTED,
    DUPLICATE,
    PENDING,
    REJECTED,
    STATUSES,
    WITHDRAWN,
    Feedback,
    Stored,
    tally,
)

# How many samples of one source may wait for review at once, by default.
REVIEW_PER_SOURCE = 50


class FeedbackStore:
    """Thread-safe. known: the tags of the schema the model is trained on."""

    def __init__(
        self, db: Database, known: frozenset[str], review_per_source: int = REVIEW_PER_SOURCE
    ) -> None:
        self.db, self.known, self.review_per_source = db, known, review_per_source

    def add_many(self, items: list[Feedback]) -> list[Stored]:
        """Store items in one transaction (one durable commit for all of them)."""
        with self.db.transaction() as t:
            return [self._add(t, item) for item in items]

    def _add(self, t: Transaction, item: Feedback) -> Stored:
        unknown = [tag for tag in item.actual if tag not in self.known]
        if unknown and self._waiting_from(t, item.source) >= self.review_per_source:
            return Stored(
                None,
                PENDING,
                None,
                tuple(unknown),
                refused=f"{self.review_per_source} samples from this client already wait for "
                "review; send more once they are decided",
            )
        kept, waiting = resolve(t, self.known, item.actual, item.source, now=time.time())
        status = PENDING if waiting else (ACCEPTED if kept else REJECTED)
        # A pending sample keeps the tags that wait, so a decision can resolve them later.
        actual_text = json.dumps(sorted(kept + waiting))
        duplicate_of = None
        if status == ACCEPTED:
            duplicate_of = first_same(t, item.title_key, actual_text)
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
        if status == PENDING:
            wait_on(t, row[0], item.source, waiting)
        tally(t, status, 1)
        return Stored(row[0], status, duplicate_of, tuple(waiting))

    @staticmethod
    def _waiting_from(t: Transaction, source: str) -> int:
        return t.run(
            "SELECT COUNT(*) FROM feedback WHERE source = ? AND status = ?", (source, PENDING)
        ).fetchone()[0]

    def counts(self) -> dict[str, int]:
        """Stored samples by status."""
        with self.db.transaction() as t:
            rows = t.run("SELECT status, samples FROM status_tally").fetchall()
        return {**{status: 0 for status in STATUSES}, **{s: int(n) for s, n in rows}}

    def sources(self) -> list[dict]:
        """Every source with its samples by status and when it last sent one, most first."""
        with self.db.transaction() as t:
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
        with self.db.transaction() as t:
            waiting, claimed = t.run(
                "SELECT SUM(CASE WHEN batch_id IS NULL THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN batch_id IS NULL THEN 0 ELSE 1 END) FROM feedback "
                "WHERE source = ? AND status <> ?",
                (source, WITHDRAWN),
            ).fetchone()
            waiting, claimed = waiting or 0, claimed or 0
            t.run(
                "DELETE FROM waiting_tag WHERE sample_id IN "
                "(SELECT id FROM feedback WHERE source = ? AND status = ?)",
                (source, PENDING),
            )
            for status, count in t.run(
                "SELECT status, COUNT(*) FROM feedback WHERE source = ? AND status <> ? "
                "GROUP BY status",
                (source, WITHDRAWN),
            ).fetchall():
                tally(t, status, -count)
                tally(t, WITHDRAWN, count)
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
        with self.db.transaction() as t:
            rows = t.run(
                "SELECT f.batch_id, f.id FROM feedback f JOIN retrain r ON r.id = f.batch_id "
                "WHERE f.status = ? AND r.span IS NOT NULL ORDER BY f.batch_id",
                (WITHDRAWN,),
            ).fetchall()
        found: dict[int, set[int]] = {}
        for batch, sample_id in rows:
            found.setdefault(batch, set()).add(sample_id)
        return found
