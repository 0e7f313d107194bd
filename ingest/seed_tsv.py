"""Parse and validate the seed project's TSV format: `title<TAB>['tag', ...]`."""

from __future__ import annotations

import ast
import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator

from contract import features, labels


class BadRowError(ValueError):
    """A row that cannot become an example; `reason` is a short stable key for reports."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Row:
    title: str
    tags: tuple[str, ...]


def parse_tags(text: str) -> tuple[str, ...]:
    """Parse a Python list literal of strings without evaluating code, then hold it to
    the shared rule (contract/labels.py): imported tags must already be canonical."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
        raise BadRowError("unparseable_tags", f"{text[:80]!r} ({type(err).__name__})") from None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise BadRowError("unparseable_tags", f"{text[:80]!r} is not a list of strings")
    try:
        return labels.check_tags(value)
    except labels.LabelError as err:
        raise BadRowError(err.reason, str(err)) from None


def parse_line(raw: bytes) -> Row:
    """One data line (without its newline) to a Row, or BadRowError saying why not."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRowError("not_utf8", f"invalid byte at position {err.start}") from None
    parts = line.split("\t")
    if len(parts) != 2:
        raise BadRowError("wrong_column_count", f"{len(parts)} columns, expected 2")
    try:
        title = labels.check_title(parts[0])
    except labels.LabelError as err:
        raise BadRowError(err.reason, str(err)) from None
    return Row(title=title, tags=parse_tags(parts[1]))


@dataclasses.dataclass
class ParseReport:
    good: int = 0
    bad: Counter = dataclasses.field(default_factory=Counter)
    samples: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    max_samples: int = 3

    @property
    def total(self) -> int:
        return self.good + sum(self.bad.values())

    @property
    def bad_fraction(self) -> float:
        return sum(self.bad.values()) / self.total if self.total else 0.0

    def reject(self, line_number: int, err: BadRowError) -> None:
        self.bad[err.reason] += 1
        kept = self.samples.setdefault(err.reason, [])
        if len(kept) < self.max_samples:
            kept.append(f"line {line_number}: {err.detail}")

    def as_dict(self) -> dict:
        return {
            "rows": self.total,
            "good": self.good,
            "bad": dict(sorted(self.bad.items())),
            "bad_fraction": round(self.bad_fraction, 6),
            "samples": self.samples,
        }


def read_rows(lines: Iterable[bytes], report: ParseReport) -> Iterator[Row]:
    """Yield the good rows of a TSV file given as byte lines; count the bad ones in report."""
    it = iter(lines)
    header = next(it, b"").rstrip(b"\r\n")
    if header.split(b"\t") != [features.TITLE.encode(), features.TAGS.encode()]:
        raise ValueError(f"expected the header 'title<TAB>tags', got {header[:80]!r}")
    for number, raw in enumerate(it, start=2):
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue  # a blank line (often the last one) is not a row
        try:
            row = parse_line(raw)
        except BadRowError as err:
            report.reject(number, err)
            continue
        report.good += 1
        yield row
