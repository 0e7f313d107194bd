"""Where the learning worker keeps spans: a local directory, or a bucket prefix (Vertex AI).

Both hold the layout the data import writes and ExampleGen reads (ingest/spans.py):
span-<N>/data.tfrecord and span-<N>/MANIFEST.json, withdrawn spans under withdrawn/.
A span for the bucket is written by the import's own writer into a scratch directory,
so its records, content hash and manifest are exactly what a local import makes; then
the data is uploaded, and the manifest last. Each object appears whole; a run that lists
the prefix between the two uploads finds a span without its manifest and stops with
SpanExampleGen's "incomplete" error rather than read half of one.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ingest import spans
from ingest import withdraw as withdrawal
from store import objects


class LocalSpans:
    """Spans in a directory on this machine (the local runner's)."""

    def __init__(self, directory: Path | str) -> None:
        self.location = str(directory)
        self.directory = Path(directory)

    def manifests(self) -> list[dict]:
        return [
            spans.read_manifest(self.directory, n) for n in spans.existing_spans(self.directory)
        ]

    def write(self, records: Iterable[bytes], extra: dict) -> dict:
        number = spans.next_span(self.directory)
        manifest, _ = spans.write_span(self.directory, number, records, extra)
        return manifest

    def withdraw(self, span: int, reason: str) -> None:
        withdrawal.withdraw(self.directory, span, reason)


class BucketSpans:
    """Spans under a gs:// prefix (the data root Vertex AI Pipelines reads)."""

    def __init__(self, prefix: str) -> None:
        self.location = prefix.rstrip("/")

    def _numbers(self, base: str) -> list[int]:
        found = (spans.SPAN_DIR.match(name) for name in objects.children(base))
        return sorted(int(m.group(1)) for m in found if m)

    def _file(self, span: int, name: str, withdrawn: bool = False) -> str:
        folder = spans.SPAN_DIR_FORMAT.format(span=span)
        parts = (spans.WITHDRAWN_DIR, folder) if withdrawn else (folder,)
        return objects.join(self.location, *parts, name)

    def _manifest(self, span: int) -> dict | None:
        text = objects.read(self._file(span, spans.MANIFEST_FILE))
        return None if text is None else json.loads(text)

    def manifests(self) -> list[dict]:
        """The manifests of complete spans (a span still uploading has none yet)."""
        found = (self._manifest(n) for n in self._numbers(self.location))
        return [m for m in found if m is not None]

    def write(self, records: Iterable[bytes], extra: dict) -> dict:
        withdrawn = self._numbers(objects.join(self.location, spans.WITHDRAWN_DIR))
        number = max(self._numbers(self.location) + withdrawn, default=-1) + 1
        with tempfile.TemporaryDirectory() as scratch:
            manifest, _ = spans.write_span(Path(scratch), number, records, extra)
            written = spans.span_dir(Path(scratch), number)
            for name in (spans.DATA_FILE, spans.MANIFEST_FILE):  # the manifest last
                objects.write(self._file(number, name), (written / name).read_bytes())
        return manifest

    def withdraw(self, span: int, reason: str) -> None:
        """Copy the span under withdrawn/ with its record, then delete it, manifest first:
        from then on no run takes it for a complete span."""
        manifest = objects.read(self._file(span, spans.MANIFEST_FILE))
        if manifest is None:
            raise FileNotFoundError(f"no span {span} under {self.location}")
        record = withdrawal.record(span, reason, json.loads(manifest)).encode()
        objects.write(self._file(span, withdrawal.RECORD_FILE, withdrawn=True), record)
        for name in (spans.DATA_FILE, spans.MANIFEST_FILE):  # the objects as they were
            data = manifest if name == spans.MANIFEST_FILE else objects.read(self._file(span, name))
            if data is not None:
                objects.write(self._file(span, name, withdrawn=True), data)
        objects.delete(self._file(span, spans.MANIFEST_FILE))
        objects.delete(self._file(span, spans.DATA_FILE))


def at(location: Path | str) -> LocalSpans | BucketSpans:
    """The span store at a directory or a gs:// prefix."""
    if str(location).startswith(objects.GCS):
        return BucketSpans(str(location))
    return LocalSpans(location)
