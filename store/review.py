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
from collections.abc import Callable, Iterable

from store.database import Database, Transaction
from store.samples import ACCEPTED, DUPLICATE, PENDING, REJECTED, FeedbackError, normalize_tag

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
            return self._release(t, lambda tags: tag in tags)

    def release_known(self) -> int:
        """Re-resolve waiting samples whose tags the schema now has (a reviewed vocabulary
        change adds them); returns how many were released. Only the queue's undecided or
        alias-less accepted tags can have joined the schema, so nothing else is read."""
        with self.db.transaction() as t:
            rows = t.run(
                "SELECT tag FROM tag_review WHERE status IN (?, ?) AND alias_of IS NULL",
                (PENDING, ACCEPTED),
            ).fetchall()
            joined = {tag for (tag,) in rows if tag in self.known}
            if not joined:
                return 0
            return self._release(t, lambda tags: not joined.isdisjoint(tags))

    def _release(self, t: Transaction, concerned: Callable[[list[str]], bool]) -> int:
        """Re-resolve the pending samples that concerned(tags) picks, oldest first; the
        duplicate check runs as it does for new feedback."""
        changed = 0
        for sample_id, title_key, actual in t.run(
            "SELECT id, title_key, actual FROM feedback WHERE status = ? ORDER BY id", (PENDING,)
        ).fetchall():
            tags = json.loads(actual)
            if not concerned(tags):
                continue
            kept, waiting = resolve(t, self.known, tags, None, now=time.time())
            if waiting:
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
            changed += 1
        return changed
