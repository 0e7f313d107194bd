"""What a feedback sample is: its fields, its statuses, and how a request body becomes one.

A tag list is always a JSON array of strings: a string where a list belongs is refused,
never iterated (the system this grew out of turned an empty correction into the tag
't' by splitting a string). Tags and titles are held to the rule every labelled sample
follows (contract/labels.py), after the normalisation people's typing needs.

A sample's life: `accepted` (trainable), `pending_review` (carries a tag the model does
not know; waits for a person), `rejected`, `duplicate` (the same title and tags came
before; stored, never trained twice) or `withdrawn` (its source was taken out).
"""

from __future__ import annotations

import dataclasses

from contract import features, labels

ACCEPTED, PENDING, REJECTED, DUPLICATE = "accepted", "pending_review", "rejected", "duplicate"
WITHDRAWN = "withdrawn"
STATUSES = (ACCEPTED, PENDING, REJECTED, DUPLICATE, WITHDRAWN)

MAX_PREDICTED = features.NUM_TAGS  # a prediction names at most every tag of the label space
MAX_VERSION_CHARS = 20
FIELDS = {"title", "predicted", "actual", "model_version"}


class FeedbackError(ValueError):
    """Feedback that cannot be stored as given; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class Feedback:
    """A sample as a client sent it, before the store decides its status."""

    title: str
    predicted: tuple[str, ...]
    actual: tuple[str, ...]
    model_version: str | None
    # Who sent it, set by the server from the caller's identity, never from the body: a
    # token's or a signed-in user's subject, or a keyed hash of an anonymous address.
    source: str = "unknown"
    # The version the app was serving when the sample arrived (model_version is what the
    # client says answered it); set by the server.
    served_version: str | None = None

    def __post_init__(self) -> None:
        for name in ("predicted", "actual"):
            tags = getattr(self, name)
            if not isinstance(tags, tuple) or not all(isinstance(t, str) for t in tags):
                raise TypeError(f"Feedback.{name} must be a tuple of tag strings, got {tags!r}")

    @property
    def title_key(self) -> str:
        """What makes two titles the same question: case and spacing do not."""
        return " ".join(self.title.lower().split())


@dataclasses.dataclass(frozen=True)
class Stored:
    """What became of one sample sent to the store."""

    id: int | None  # None: refused, nothing stored
    status: str
    duplicate_of: int | None
    unknown_tags: tuple[str, ...]
    refused: str | None = None  # why the source may not add this sample now


@dataclasses.dataclass(frozen=True)
class Sample:
    """A stored sample as a retrain batch uses it."""

    id: int
    title: str
    actual: tuple[str, ...]
    source: str = "unknown"


def tally(t, status: str, change: int) -> None:
    """Keep the count of samples by status (table status_tally) in step with a change
    of `change` samples of `status`: every statement that adds a sample or changes its
    status calls this in the same transaction, so the count is never behind the rows."""
    if change:
        t.run(
            "INSERT INTO status_tally (status, samples) VALUES (?, ?) ON CONFLICT (status) "
            "DO UPDATE SET samples = status_tally.samples + excluded.samples",
            (status, change),
        )


def normalize_tag(tag: object) -> str:
    try:
        return labels.normalize_tag(tag)
    except labels.LabelError as err:
        raise FeedbackError(str(err)) from None


def normalize_tags(tags: object, field: str, most: int, least: int = 0) -> tuple[str, ...]:
    """A list of tags, normalised, in first-seen order, without repeats."""
    if isinstance(tags, str) or not isinstance(tags, list):
        raise FeedbackError(f"'{field}' must be a list of tag strings, got {type(tags).__name__}")
    try:
        return labels.check_tags([normalize_tag(t) for t in tags], field, least, most)
    except labels.LabelError as err:
        raise FeedbackError(str(err)) from None


def normalize_title(title: object) -> str:
    """A typed title with its runs of white space collapsed, held to the title rule."""
    if not isinstance(title, str):
        raise FeedbackError(f"'title' must be a string, got {type(title).__name__}")
    try:
        return labels.check_title(" ".join(title.split()))
    except labels.LabelError as err:
        raise FeedbackError(str(err)) from None


def parse_feedback(document: object) -> Feedback:
    """A decoded JSON request body to Feedback, or FeedbackError saying what is wrong."""
    if not isinstance(document, dict):
        raise FeedbackError("the body must be a JSON object")
    unknown = set(document) - FIELDS
    if unknown:
        raise FeedbackError(f"unknown fields: {', '.join(sorted(unknown))}")
    missing = {"title", "actual"} - set(document)
    if missing:
        raise FeedbackError(f"missing fields: {', '.join(sorted(missing))}")
    version = document.get("model_version")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise FeedbackError("'model_version' must be a string or an integer")
        version = str(version)
        if len(version) > MAX_VERSION_CHARS:
            raise FeedbackError("'model_version' is too long")
    return Feedback(
        title=normalize_title(document["title"]),
        predicted=normalize_tags(document.get("predicted", []), "predicted", MAX_PREDICTED),
        actual=normalize_tags(document["actual"], "actual", features.MAX_TAGS, least=1),
        model_version=version,
    )
