"""Access tokens for the app's roles, kept in the database as hashes only.

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

from store import tokens as rows
from store.database import Database

ANYONE, REVIEWER, OPERATOR = "anyone", "reviewer", "operator"
ROLES = (ANYONE, REVIEWER, OPERATOR)  # each includes the ones before it
TOKEN_PREFIX = "sot_"  # recognisable in logs and by secret scanners
ISSUED_ROLES = (REVIEWER, OPERATOR)


def may(role: str, needed: str) -> bool:
    """Whether `role` includes `needed`."""
    return ROLES.index(role) >= ROLES.index(needed)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(db: Database, name: str, role: str) -> str:
    """A new token for `name` with `role`; returns it (the only time it is readable)."""
    if role not in ISSUED_ROLES:
        raise ValueError(f"a token's role is one of {', '.join(ISSUED_ROLES)}, not {role!r}")
    if not name or len(name) > 64 or not name.isprintable():
        raise ValueError("a token's name is 1 to 64 printable characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    rows.add(db, name, role, _digest(token))
    return token


def listed(db: Database) -> list[dict]:
    return rows.listed(db)


def revoke(db: Database, name: str) -> None:
    """Revoke the token named `name` (it stays listed, marked revoked); KeyError if none."""
    rows.revoke(db, name)


def lookup(db: Database, token: str) -> tuple[str, str] | None:
    """(name, role) of a valid token, or None for an unknown or revoked one."""
    return rows.lookup(db, _digest(token))
