"""What a piece of feedback must look like, and the one way it is normalised.

A tag list is always a JSON array of strings: a string where a list belongs is refused,
never iterated (the system this grew out of turned an empty correction into the tag
't' by splitting a string). Tags are lower-cased, stripped, inner spaces become '-', and
known aliases map to the tag the model knows.
"""

from __future__ import annotations

import dataclasses
import re

from contract import features

MAX_PREDICTED = features.NUM_TAGS  # a prediction names at most every tag of the label space
MAX_VERSION_CHARS = 20
FIELDS = {"title", "predicted", "actual", "model_version"}
# Spellings people type for tags the model knows. Keys are already normalised.
ALIASES = {
    "c-sharp": "c#",
    "csharp": "c#",
    "cpp": "c++",
    "cplusplus": "c++",
    "js": "javascript",
    "node": "node.js",
    "nodejs": "node.js",
    "node-js": "node.js",
    "angular.js": "angularjs",
    "objc": "objective-c",
    "obj-c": "objective-c",
    "py": "python",
    "python3": "python-3.x",
    "python-3": "python-3.x",
    "python2": "python-2.7",
    "rails": "ruby-on-rails",
    "ror": "ruby-on-rails",
    "mssql": "sql-server",
    "vb": "vb.net",
    "dotnet": ".net",
    "bootstrap": "twitter-bootstrap",
    "mac": "osx",
    "macos": "osx",
    "regexp": "regex",
    "array": "arrays",
    "threads": "multithreading",
}


class FeedbackError(ValueError):
    """Feedback that cannot be stored as given; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class Feedback:
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


def normalize_tag(tag: object) -> str:
    if not isinstance(tag, str):
        raise FeedbackError(f"a tag must be a string, got {type(tag).__name__}: {tag!r}")
    text = re.sub(r"\s+", "-", tag.strip().lower())
    text = ALIASES.get(text, text)
    if not features.TAG_PATTERN.match(text):
        raise FeedbackError(f"{tag!r} is not a tag: {features.TAG_RULE}")
    return text


def normalize_tags(tags: object, field: str, most: int, least: int = 0) -> tuple[str, ...]:
    """A list of tags, normalised, in first-seen order, without repeats."""
    if isinstance(tags, str) or not isinstance(tags, list):
        raise FeedbackError(f"'{field}' must be a list of tag strings, got {type(tags).__name__}")
    normalised = tuple(dict.fromkeys(normalize_tag(t) for t in tags))
    if not least <= len(normalised) <= most:
        raise FeedbackError(f"'{field}' needs {least} to {most} tags, got {len(normalised)}")
    return normalised


def normalize_title(title: object) -> str:
    if not isinstance(title, str):
        raise FeedbackError(f"'title' must be a string, got {type(title).__name__}")
    text = " ".join(title.split())
    if not text:
        raise FeedbackError("'title' is empty")
    if len(text) > features.MAX_TITLE_CHARS:
        raise FeedbackError(
            f"'title' has {len(text)} characters, at most {features.MAX_TITLE_CHARS}"
        )
    return text


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
