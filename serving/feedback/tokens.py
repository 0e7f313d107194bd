"""Access tokens for the app's roles, kept in the feedback store as hashes only.

    anyone    predict and send feedback (no token needed), rate-limited per source
    reviewer  the review queue: list, accept (as a new tag or an alias), reject
    operator  what changes what is served or trained on: withdrawing a source, rollouts

A role includes the ones above it. A token is shown once, when it is created; the store
keeps its SHA-256 (a token is 256 random bits, so an unsalted hash is as strong as a
password hash and can be looked up directly). Tokens are sent as
`Authorization: Bearer <token>`, can be listed by name and revoked.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from serving.feedback.store import FeedbackStore

ANYONE, REVIEWER, OPERATOR = "anyone", "reviewer", "operator"
ROLES = (ANYONE, REVIEWER, OPERATOR)  # each includes the ones before it
TOKEN_PREFIX = "sot_"  # recognisable in logs and by secret scanners
ISSUED_ROLES = (REVIEWER, OPERATOR)


def may(role: str, needed: str) -> bool:
    """Whether `role` includes `needed`."""
    return ROLES.index(role) >= ROLES.index(needed)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(store: FeedbackStore, name: str, role: str) -> str:
    """A new token for `name` with `role`; returns it (the only time it is readable)."""
    if role not in ISSUED_ROLES:
        raise ValueError(f"a token's role is one of {', '.join(ISSUED_ROLES)}, not {role!r}")
    if not name or len(name) > 64 or not name.isprintable():
        raise ValueError("a token's name is 1 to 64 printable characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.transaction() as t:
        if t.run("SELECT 1 FROM api_token WHERE name = ?", (name,)).fetchone():
            raise ValueError(f"a token named {name!r} exists: revoke it first")
        t.run(
            "INSERT INTO api_token (name, role, token_sha256, created_at) VALUES (?, ?, ?, ?)",
            (name, role, _digest(token), time.time()),
        )
    return token


def listed(store: FeedbackStore) -> list[dict]:
    with store.transaction() as t:
        rows = t.run(
            "SELECT name, role, created_at, revoked_at FROM api_token ORDER BY name"
        ).fetchall()
    return [{"name": n, "role": r, "created_at": c, "revoked_at": v} for n, r, c, v in rows]


def revoke(store: FeedbackStore, name: str) -> None:
    """Revoke the token named `name` (it stays listed, marked revoked); KeyError if none."""
    with store.transaction() as t:
        row = t.run(
            "SELECT token_sha256 FROM api_token WHERE name = ? AND revoked_at IS NULL", (name,)
        ).fetchone()
        if row is None:
            raise KeyError(name)
        # A revoked token's name may be used again; its row keeps the record of the old one.
        t.run(
            "UPDATE api_token SET revoked_at = ?, name = ? WHERE name = ?",
            (time.time(), f"{name} (revoked {row[0][:8]})", name),
        )


def lookup(store: FeedbackStore, token: str) -> tuple[str, str] | None:
    """(name, role) of a valid token, or None for an unknown or revoked one."""
    with store.transaction() as t:
        row = t.run(
            "SELECT name, role FROM api_token WHERE token_sha256 = ? AND revoked_at IS NULL",
            (_digest(token),),
        ).fetchone()
    return (row[0], row[1]) if row else None
