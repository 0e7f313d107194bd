"""The release state, kept in the feedback store's database so that every app replica,
the controller and the operators' commands see one truth.

    rollout          per model: stable, canary, previous (kept loaded for a moment after
                     a promotion), mode (stable | shadow | canary), the canary's share of
                     clients, the stage and since when
    rollout_version  per version: stable | canary | retired | rejected (never again)
    rollout_event    every change: when, version, action, reason, checks (JSON), actor
"""

from __future__ import annotations

import dataclasses
import json
import time

from serving.feedback.store import FeedbackStore

STABLE, SHADOW, CANARY = "stable", "shadow", "canary"
REJECTED, RETIRED = "rejected", "retired"
# Event actions.
ADOPTED, STARTED, STAGED, PROMOTED, ROLLED_BACK = (
    "adopted",
    "canary",
    "stage",
    "promoted",
    "rolled_back",
)
ACTIONS = (ADOPTED, STARTED, STAGED, PROMOTED, ROLLED_BACK)


@dataclasses.dataclass(frozen=True)
class Release:
    stable: str | None = None
    canary: str | None = None
    previous: str | None = None
    mode: str = STABLE
    share: float = 0.0  # of clients answered by the canary (mode canary)
    stage: int = 0
    stage_since: float = 0.0


@dataclasses.dataclass(frozen=True)
class Event:
    version: str
    action: str
    reason: str
    checks: list[dict] = dataclasses.field(default_factory=list)
    actor: str = "controller"
    at: float = 0.0  # 0: now


class NothingToDoError(Exception):
    """The requested action does not apply to the current release (HTTP 409)."""


class Releases:
    def __init__(self, store: FeedbackStore, model: str) -> None:
        self.store, self.model = store, model

    def current(self) -> Release:
        with self.store.transaction() as t:
            row = t.run(
                "SELECT stable, canary, previous, mode, share, stage, stage_since "
                "FROM rollout WHERE model = ?",
                (self.model,),
            ).fetchone()
        return Release(*row) if row else Release()

    def statuses(self) -> dict[str, str]:
        with self.store.transaction() as t:
            rows = t.run(
                "SELECT version, status FROM rollout_version WHERE model = ?", (self.model,)
            ).fetchall()
        return dict(rows)

    def rejected(self) -> set[str]:
        return {v for v, status in self.statuses().items() if status == REJECTED}

    def change(self, before: Release, after: Release, event: Event | None) -> bool:
        """Moves the release from `before` to `after` in one transaction, unless someone
        else changed it first (then False, and nothing is written)."""
        now = time.time()
        with self.store.transaction() as t:
            row = t.run(
                "SELECT stable, canary, previous, mode, share, stage, stage_since "
                "FROM rollout WHERE model = ?",
                (self.model,),
            ).fetchone()
            if (Release(*row) if row else Release()) != before:
                return False
            values = (
                after.stable,
                after.canary,
                after.previous,
                after.mode,
                after.share,
                after.stage,
                after.stage_since,
            )
            t.run(
                "INSERT INTO rollout (model, stable, canary, previous, mode, share, stage, "
                "stage_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model) DO UPDATE "
                "SET stable = excluded.stable, canary = excluded.canary, previous = "
                "excluded.previous, mode = excluded.mode, share = excluded.share, stage = "
                "excluded.stage, stage_since = excluded.stage_since",
                (self.model, *values),
            )
            for version, status in self._version_changes(before, after, event):
                t.run(
                    "INSERT INTO rollout_version (model, version, status, at) VALUES "
                    "(?, ?, ?, ?) ON CONFLICT (model, version) DO UPDATE SET status = "
                    "excluded.status, at = excluded.at",
                    (self.model, version, status, now),
                )
            if event is not None:
                t.run(
                    "INSERT INTO rollout_event (model, at, version, action, reason, checks, "
                    "actor) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        self.model,
                        event.at or now,
                        event.version,
                        event.action,
                        event.reason,
                        json.dumps(event.checks),
                        event.actor,
                    ),
                )
        return True

    @staticmethod
    def _version_changes(before: Release, after: Release, event: Event | None):
        if event is not None and event.action == ROLLED_BACK:
            yield event.version, REJECTED
        if after.stable is not None:
            yield after.stable, STABLE
        if after.canary is not None:
            yield after.canary, CANARY
        if before.stable not in (None, after.stable):
            yield before.stable, RETIRED

    def events(self, version: str | None = None) -> list[dict]:
        query = (
            "SELECT at, version, action, reason, checks, actor FROM rollout_event WHERE model = ?"
        )
        params: tuple = (self.model,)
        if version is not None:
            query, params = query + " AND version = ?", (*params, version)
        with self.store.transaction() as t:
            rows = t.run(query + " ORDER BY id", params).fetchall()
        keys = ("at", "version", "action", "reason", "checks", "actor")
        return [{**dict(zip(keys, r, strict=True)), "checks": json.loads(r[4])} for r in rows]

    def event_counts(self) -> dict[str, int]:
        with self.store.transaction() as t:
            rows = t.run(
                "SELECT action, COUNT(*) FROM rollout_event WHERE model = ? GROUP BY action",
                (self.model,),
            ).fetchall()
        return {**dict.fromkeys(ACTIONS, 0), **dict(rows)}

    # --- what operators may do, from the command line or the page ----------------------

    def promote(self, actor: str, reason: str = "promoted by an operator") -> Release:
        before = self.current()
        if before.canary is None:
            raise NothingToDoError("there is no canary to promote")
        after = Release(stable=before.canary, previous=before.stable, stage_since=time.time())
        if not self.change(before, after, Event(before.canary, PROMOTED, reason, actor=actor)):
            raise NothingToDoError("the release changed meanwhile; look again")
        return after

    def rollback(self, actor: str, reason: str, checks: list[dict] | None = None) -> Release:
        before = self.current()
        if before.canary is None:
            raise NothingToDoError("there is no canary to roll back")
        after = Release(stable=before.stable, previous=before.canary, stage_since=time.time())
        event = Event(before.canary, ROLLED_BACK, reason, checks or [], actor)
        if not self.change(before, after, event):
            raise NothingToDoError("the release changed meanwhile; look again")
        return after
