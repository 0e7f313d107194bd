"""Release rows, so that every app replica, the controller and the operators' commands see
one truth. The rules for moving a release are the rollout's (serving/rollout/state.py).

    rollout          per model: stable, canary, previous (kept loaded for a moment after
                     a promotion), mode (stable | shadow | canary), the canary's share of
                     clients, the stage and since when
    rollout_version  per version: its status (stable, canary, retired, rejected)
    rollout_event    every change: when, version, action, reason, checks (JSON), actor
"""

from __future__ import annotations

import dataclasses
import json
import time

from store.database import Database, Transaction

COLUMNS = ("stable", "canary", "previous", "mode", "share", "stage", "stage_since")
EVENT_KEYS = ("at", "version", "action", "reason", "checks", "actor")


@dataclasses.dataclass(frozen=True)
class Release:
    stable: str | None = None
    canary: str | None = None
    previous: str | None = None
    mode: str = "stable"  # stable | shadow | canary
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


def _read(t: Transaction, model: str) -> Release:
    row = t.run(f"SELECT {', '.join(COLUMNS)} FROM rollout WHERE model = ?", (model,)).fetchone()
    return Release(*row) if row else Release()


def current(db: Database, model: str) -> Release:
    with db.transaction() as t:
        return _read(t, model)


def change(
    db: Database,
    model: str,
    before: Release,
    after: Release,
    statuses: list[tuple[str, str]],
    event: Event | None,
) -> bool:
    """Moves the release from `before` to `after`, sets each (version, status) and
    records the event, in one transaction, unless someone else changed the release
    first (then False, and nothing is written)."""
    now = time.time()
    with db.transaction() as t:
        if _read(t, model) != before:
            return False
        values = tuple(getattr(after, column) for column in COLUMNS)
        names = ", ".join(COLUMNS)
        updates = ", ".join(f"{column} = excluded.{column}" for column in COLUMNS)
        t.run(
            f"INSERT INTO rollout (model, {names}) VALUES (?, {t.marks(len(COLUMNS))}) "
            f"ON CONFLICT (model) DO UPDATE SET {updates}",
            (model, *values),
        )
        for version, status in statuses:
            t.run(
                "INSERT INTO rollout_version (model, version, status, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (model, version) DO UPDATE SET status = excluded.status, "
                "at = excluded.at",
                (model, version, status, now),
            )
        if event is not None:
            t.run(
                "INSERT INTO rollout_event (model, at, version, action, reason, checks, actor) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    model,
                    event.at or now,
                    event.version,
                    event.action,
                    event.reason,
                    json.dumps(event.checks),
                    event.actor,
                ),
            )
    return True


def statuses(db: Database, model: str) -> dict[str, str]:
    with db.transaction() as t:
        rows = t.run(
            "SELECT version, status FROM rollout_version WHERE model = ?", (model,)
        ).fetchall()
    return dict(rows)


def events(db: Database, model: str, version: str | None = None) -> list[dict]:
    """The model's events, oldest first (only one version's, if given)."""
    query = f"SELECT {', '.join(EVENT_KEYS)} FROM rollout_event WHERE model = ?"
    params: tuple = (model,)
    if version is not None:
        query, params = query + " AND version = ?", (*params, version)
    with db.transaction() as t:
        rows = t.run(query + " ORDER BY id", params).fetchall()
    return [{**dict(zip(EVENT_KEYS, r, strict=True)), "checks": json.loads(r[4])} for r in rows]


def event_counts(db: Database, model: str) -> dict[str, int]:
    """How many events of each action the model has had."""
    with db.transaction() as t:
        rows = t.run(
            "SELECT action, COUNT(*) FROM rollout_event WHERE model = ? GROUP BY action",
            (model,),
        ).fetchall()
    return dict(rows)


def recent_versions(db: Database, model: str, most: int = 4) -> list[str]:
    """The newest versions the release has named (stable, canary, retired or rejected),
    newest first."""
    with db.transaction() as t:
        rows = t.run("SELECT version FROM rollout_version WHERE model = ?", (model,)).fetchall()
    return sorted((v for (v,) in rows), key=int, reverse=True)[:most]
