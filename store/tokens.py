"""Access tokens' rows: a name, a role and the token's SHA-256, never the token itself.

Who may hold which role, and how a token is made, is the app's (serving/feedback/tokens.py);
this module only keeps the rows.
"""

from __future__ import annotations

import time

from store.database import Database


class TokenExistsError(ValueError):
    """A token of that name is active; revoke it first."""


def add(db: Database, name: str, role: str, digest: str) -> None:
    with db.transaction() as t:
        if t.run("SELECT 1 FROM api_token WHERE name = ?", (name,)).fetchone():
            raise TokenExistsError(f"a token named {name!r} exists: revoke it first")
        t.run(
            "INSERT INTO api_token (name, role, token_sha256, created_at) VALUES (?, ?, ?, ?)",
            (name, role, digest, time.time()),
        )


def listed(db: Database) -> list[dict]:
    """Every token by name, revoked ones too (they keep the record of who held what)."""
    with db.transaction() as t:
        rows = t.run(
            "SELECT name, role, created_at, revoked_at FROM api_token ORDER BY name"
        ).fetchall()
    return [{"name": n, "role": r, "created_at": c, "revoked_at": v} for n, r, c, v in rows]


def revoke(db: Database, name: str) -> None:
    """Revoke the active token named `name`; KeyError if there is none. Its row stays,
    renamed, so the name may be used again."""
    with db.transaction() as t:
        row = t.run(
            "SELECT token_sha256 FROM api_token WHERE name = ? AND revoked_at IS NULL", (name,)
        ).fetchone()
        if row is None:
            raise KeyError(name)
        t.run(
            "UPDATE api_token SET revoked_at = ?, name = ? WHERE name = ?",
            (time.time(), f"{name} (revoked {row[0][:8]})", name),
        )


def lookup(db: Database, digest: str) -> tuple[str, str] | None:
    """(name, role) of the active token with this digest, or None."""
    with db.transaction() as t:
        row = t.run(
            "SELECT name, role FROM api_token WHERE token_sha256 = ? AND revoked_at IS NULL",
            (digest,),
        ).fetchone()
    return (row[0], row[1]) if row else None
