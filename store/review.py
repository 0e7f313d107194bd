"""Tags the model does not know, and the people who decide about them.

A sample that carries an unknown tag waits (`pending_review`) until a reviewer accepts
the tag, as a new tag or as an alias of a known one, or rejects it (it is then dropped
from the sample). Decisions stand for later feedback. A tag accepted without an alias
waits until the schema has it: the model's tag vocabulary changes only by a reviewed
change to schema/schema.pbtxt and the tag count (docs/app-and-feedback.md), never by a
decision in the queue alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from store.database import Database, Transaction
from store.samples import (
    ACCEPTED,
    DUPLICATE,
    PENDING,
    REJECTED,
    FeedbackError,
    normalize_tag,
    tally,
)

PAGE_MAX = 200  # rows of the queue in one page


def resolve(
    t: Transaction, known: frozenset[str], tags: Iterable[str], source: str | None, now: float
) -> tuple[list[str], list[str]]:
    """(tags after review decisions, tags still waiting for one). New unknown tags
    enter the queue; rejected ones are dropped; aliases are followed."""
    tags = list(tags)
    unknown = [tag for tag in tags if tag not in known]
    decided = {}
    if unknown:
        rows = t.run(
            f"SELECT tag, status, alias_of FROM tag_review WHERE tag IN ({t.marks(len(unknown))})",
            unknown,
        )
        decided = {tag: (status, alias) for tag, status, alias in rows.fetchall()}
    kept, waiting = [], []
    for tag in tags:
        if tag in known:
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


def wait_on(t: Transaction, sample_id: int, source: str, tags) -> None:
    """Record that a pending sample waits on these tags (the review queue reads these)."""
    for tag in tags:
        t.run(
            "INSERT INTO waiting_tag (tag, sample_id, source) VALUES (?, ?, ?)",
            (tag, sample_id, source),
        )


def first_same(t: Transaction, title_key: str, actual_text: str, before: int | None = None):
    """The first trainable sample with this title and these tags (before id `before`)."""
    found = t.run(
        "SELECT id FROM feedback WHERE title_key = ? AND actual = ? AND status IN (?, ?) "
        + ("AND id < ? " if before is not None else "")
        + "ORDER BY id LIMIT 1",
        (title_key, actual_text, ACCEPTED, PENDING, *([before] if before is not None else [])),
    ).fetchone()
    return found[0] if found else None


class ReviewQueue:
    """known: the tags of the schema the model is trained on."""

    def __init__(self, db: Database, known: frozenset[str]) -> None:
        self.db, self.known = db, known

    def page(
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
        with self.db.transaction() as t:
            rows = t.run(
                "SELECT tag, status, alias_of, first_seen FROM tag_review WHERE "
                + " AND ".join(where)
                + f" ORDER BY tag LIMIT {int(limit) + 1}",
                params,
            ).fetchall()
            page = rows[:limit]
            waiting = self._waiting(t, [tag for tag, *_ in page], examples)
        result = []
        for tag, state, alias, seen in page:
            by_source, titles = waiting.get(tag, ({}, []))
            top = sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            result.append(
                {
                    "tag": tag,
                    "status": state,
                    "alias_of": alias,
                    "first_seen": seen,
                    "in_schema": tag in self.known,
                    "samples_waiting": sum(by_source.values()),
                    "sources": len(by_source),
                    "top_sources": [{"source": s, "samples": n} for s, n in top],
                    "examples": list(dict.fromkeys(titles))[:examples],
                }
            )
        return result, (page[-1][0] if len(rows) > limit else None)

    @staticmethod
    def _waiting(
        t: Transaction, tags: list[str], examples: int
    ) -> dict[str, tuple[dict[str, int], list[str]]]:
        """For each tag, the samples waiting on it by source, and the titles of its oldest
        few: two queries for a whole page, reading only the samples of its tags."""
        if not tags:
            return {}
        marks = t.marks(len(tags))
        found: dict[str, tuple[dict[str, int], list[str]]] = {tag: ({}, []) for tag in tags}
        for tag, source, count in t.run(
            f"SELECT tag, source, COUNT(*) FROM waiting_tag WHERE tag IN ({marks}) "
            "GROUP BY tag, source",
            tags,
        ).fetchall():
            found[tag][0][source] = count
        for tag, title in t.run(
            "SELECT o.tag, f.title FROM (SELECT tag, sample_id, ROW_NUMBER() OVER (PARTITION "
            f"BY tag ORDER BY sample_id) AS n FROM waiting_tag WHERE tag IN ({marks})) AS o "
            "JOIN feedback f ON f.id = o.sample_id WHERE o.n <= ? ORDER BY o.tag, o.n",
            (*tags, 4 * examples),
        ).fetchall():
            found[tag][1].append(title)
        return found

    def decide(
        self, tag: str, accept: bool, alias_of: str | None = None, by: str | None = None
    ) -> int:
        """Accept (optionally as an alias of a known tag) or reject a tag in the queue;
        re-resolves the samples waiting on it. Returns how many samples changed status.
        by: who decided, kept with the decision. KeyError: no such tag in the queue."""
        tag = normalize_tag(tag)
        if alias_of is not None:
            alias_of = normalize_tag(alias_of)
            if alias_of not in self.known:
                raise FeedbackError(f"{alias_of!r} is not a tag the model knows")
        with self.db.transaction() as t:
            found = t.run("SELECT status FROM tag_review WHERE tag = ?", (tag,)).fetchone()
            if found is None:
                raise KeyError(tag)
            t.run(
                "UPDATE tag_review SET status = ?, alias_of = ?, decided_at = ?, decided_by = ? "
                "WHERE tag = ?",
                (ACCEPTED if accept else REJECTED, alias_of, time.time(), by, tag),
            )
            return self._release(t, [tag])

    def release_known(self) -> int:
        """Re-resolve waiting samples whose tags the schema now has (a reviewed vocabulary
        change adds them); returns how many were released. Only the queue's undecided or
        alias-less accepted tags can have joined the schema, so nothing else is read."""
        with self.db.transaction() as t:
            rows = t.run(
                "SELECT tag FROM tag_review WHERE status IN (?, ?) AND alias_of IS NULL",
                (PENDING, ACCEPTED),
            ).fetchall()
            joined = sorted(tag for (tag,) in rows if tag in self.known)
            return self._release(t, joined) if joined else 0

    def _release(self, t: Transaction, tags: list[str]) -> int:
        """Re-resolve the pending samples waiting on these tags, oldest first; the
        duplicate check runs as it does for new feedback."""
        if not tags:
            return 0
        ids = [
            sample_id
            for (sample_id,) in t.run(
                f"SELECT DISTINCT sample_id FROM waiting_tag WHERE tag IN ({t.marks(len(tags))}) "
                "ORDER BY sample_id",
                tags,
            ).fetchall()
        ]
        changed = 0
        for sample_id in ids:
            title_key, actual, source = t.run(
                "SELECT title_key, actual, source FROM feedback WHERE id = ?", (sample_id,)
            ).fetchone()
            kept, waiting = resolve(t, self.known, json.loads(actual), None, now=time.time())
            t.run("DELETE FROM waiting_tag WHERE sample_id = ?", (sample_id,))
            if waiting:
                wait_on(t, sample_id, source, waiting)
                continue
            actual_text = json.dumps(sorted(kept))
            status, duplicate_of = (ACCEPTED if kept else REJECTED), None
            if kept:
                duplicate_of = first_same(t, title_key, actual_text, before=sample_id)
                status = DUPLICATE if duplicate_of is not None else ACCEPTED
            t.run(
                "UPDATE feedback SET status = ?, actual = ?, duplicate_of = ? WHERE id = ?",
                (status, actual_text, duplicate_of, sample_id),
            )
            tally(t, PENDING, -1)
            tally(t, status, 1)
            changed += 1
        return changed
