"""The database as the app and the worker open it, for tests that need one."""

from __future__ import annotations

import dataclasses

from contract import paths
from serving.feedback import tokens
from store.database import Database
from store.feedback import FeedbackStore
from store.retrain import RetrainQueue
from store.review import ReviewQueue
from store.samples import Feedback, Stored
from store.vocabulary import known_tags

KNOWN = known_tags(paths.schema_path())


@dataclasses.dataclass
class Opened:
    """A database with the parts the app and the worker make on it."""

    db: Database
    feedback: FeedbackStore
    review: ReviewQueue
    retrain: RetrainQueue

    @classmethod
    def at(cls, url: str, known: frozenset[str] = KNOWN, review_per_source: int = 50) -> Opened:
        db = Database(url)
        review = ReviewQueue(db, known)
        review.release_known()  # as the app and the worker do when they start
        return cls(db, FeedbackStore(db, known, review_per_source), review, RetrainQueue(db, known))

    def add(self, item: Feedback) -> Stored:
        return self.feedback.add_many([item])[0]

    def close(self) -> None:
        self.db.close()


def sqlite_url(path) -> str:
    return f"sqlite:///{path}"


def make_token(url: str, name: str, role: str) -> str:
    """A token as an operator makes one (`python -m serving.feedback token create`)."""
    db = Database(url)
    try:
        return tokens.create(db, name, role)
    finally:
        db.close()
