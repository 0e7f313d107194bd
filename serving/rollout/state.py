"""The rules of a release: which version is stable, which is the canary, and what an
operator may do to them. The rows live in the database (store/releases.py), so every
app replica, the controller and the operators' commands see one truth.

A version's status is stable, canary, retired (replaced by a promotion) or rejected
(rolled back: never started again).
"""

from __future__ import annotations

import time

from store import releases
from store.database import Database
from store.releases import Event, Release

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


class NothingToDoError(Exception):
    """The requested action does not apply to the current release (HTTP 409)."""


def version_changes(before: Release, after: Release, event: Event | None):
    """(version, status) for each version whose status a move from before to after sets."""
    if event is not None and event.action == ROLLED_BACK:
        yield event.version, REJECTED
    if after.stable is not None:
        yield after.stable, STABLE
    if after.canary is not None:
        yield after.canary, CANARY
    if before.stable not in (None, after.stable):
        yield before.stable, RETIRED


class Releases:
    """The release of one model."""

    def __init__(self, db: Database, model: str) -> None:
        self.db, self.model = db, model

    def current(self) -> Release:
        return releases.current(self.db, self.model)

    def statuses(self) -> dict[str, str]:
        return releases.statuses(self.db, self.model)

    def rejected(self) -> set[str]:
        return {v for v, status in self.statuses().items() if status == REJECTED}

    def change(self, before: Release, after: Release, event: Event | None) -> bool:
        """Moves the release from `before` to `after` in one transaction, unless someone
        else changed it first (then False, and nothing is written)."""
        changes = list(version_changes(before, after, event))
        return releases.change(self.db, self.model, before, after, changes, event)

    def events(self, version: str | None = None) -> list[dict]:
        return releases.events(self.db, self.model, version)

    def event_counts(self) -> dict[str, int]:
        return {**dict.fromkeys(ACTIONS, 0), **releases.event_counts(self.db, self.model)}

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
