"""What a labelled sample is: the one rule the data import and the feedback path share.

A sample is a title and its tags:
- the title, trimmed, has 1 to MAX_TITLE_CHARS characters;
- it has 1 to MAX_TAGS distinct tags, kept in first-seen order;
- each tag is in the canonical form TAG_PATTERN describes: lower-case, and only the
  characters StackOverflow allows in tag names.

What differs by source is how a sample reaches that form (docs/app-and-feedback.md):
feedback is typed by people, so its tags are first normalised (`normalize_tag`:
lower-cased, inner spaces to '-', known aliases followed) and its title's runs of
white space collapsed; an imported data set is taken as written, and a tag not in
canonical form is a bad row, since rewriting reviewed data would change its content
hash and the split of each example.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from contract import features

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


class LabelError(ValueError):
    """A sample that breaks the rule. `reason` is a short stable key (the import counts
    rows by it); the message says what to change."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_title(title: str, field: str = "title") -> str:
    """The title, trimmed, or LabelError when it is empty or too long."""
    text = title.strip()
    if not text:
        raise LabelError("empty_title", f"'{field}' is empty")
    if len(text) > features.MAX_TITLE_CHARS:
        raise LabelError(
            "title_too_long",
            f"'{field}' has {len(text)} characters, at most {features.MAX_TITLE_CHARS}",
        )
    return text


def check_tag(tag: str) -> str:
    """The tag, when it is in canonical form; else LabelError."""
    if not features.TAG_PATTERN.match(tag):
        raise LabelError("bad_tag", f"{tag!r} is not a tag: {features.TAG_RULE}")
    return tag


def normalize_tag(tag: object) -> str:
    """A tag as a person typed it, in canonical form (or LabelError)."""
    if not isinstance(tag, str):
        raise LabelError("bad_tag", f"a tag must be a string, got {type(tag).__name__}: {tag!r}")
    text = re.sub(r"\s+", "-", tag.strip().lower())
    return check_tag(ALIASES.get(text, text))


def check_tags(
    tags: Iterable[str], field: str = "tags", least: int = 1, most: int = features.MAX_TAGS
) -> tuple[str, ...]:
    """Canonical tags without repeats, in first-seen order, least to most of them."""
    kept = tuple(dict.fromkeys(check_tag(tag) for tag in tags))
    if not least <= len(kept) <= most:
        reason = "empty_tags" if not kept else "too_many_tags"
        raise LabelError(reason, f"'{field}' needs {least} to {most} tags, got {len(kept)}")
    return kept
