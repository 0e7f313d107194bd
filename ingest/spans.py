"""Write validated rows as one immutable, content-addressed span of tf.Examples.

Layout under the spans directory (ExampleGen's input_base):

    span-<N>/data.tfrecord   serialized tf.Example records, in input order
    span-<N>/MANIFEST.json   content hash, source file hash and the import report

A span is written under a hidden name and renamed into place, so ExampleGen never sees
half of one. Re-importing identical content leaves the span (and its mtime, which
ExampleGen's fingerprint uses) untouched, so a cached pipeline run stays cached.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from contract import features
from contract.digests import file_sha256
from contract.quiet import quiet_imports
from ingest.seed_tsv import Row

DATA_FILE = "data.tfrecord"
MANIFEST_FILE = "MANIFEST.json"
SPAN_DIR_FORMAT = "span-{span}"
SPAN_DIR = re.compile(r"^span-(\d+)$")
# Withdrawn spans move here (never read again, numbers never reused); see ingest/withdraw.py.
WITHDRAWN_DIR = "withdrawn"
# Manifest fields saying where a span came from: the file imported, or the feedback batch
# (whose sample ids the manifest lists too). SpanExampleGen copies them to its artifact.
SOURCE, FEEDBACK_BATCH, SAMPLE_IDS = "source", "feedback_batch", "sample_ids"
# SOURCE of a span the learning worker wrote: ExampleGen puts such spans in training only.
FEEDBACK_SOURCE = "feedback"
REPLACES = "replaces"  # the withdrawn span a span was written to replace
WITHDRAW_HINT = "take a bad span out with `python -m ingest.withdraw --span N --reason TEXT`"


class SpanConflictError(RuntimeError):
    """A span with this number exists and holds different data; spans are immutable."""


class SpanRefusedError(RuntimeError):
    """The records were read, and a check before publishing refused them."""


def span_dir(spans_dir: Path, span: int) -> Path:
    return spans_dir / SPAN_DIR_FORMAT.format(span=span)


def existing_spans(spans_dir: Path) -> list[int]:
    if not spans_dir.is_dir():
        return []
    found = (SPAN_DIR.match(p.name) for p in spans_dir.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def next_span(spans_dir: Path) -> int:
    """The number a new span gets: past every span, withdrawn ones included."""
    used = existing_spans(spans_dir) + existing_spans(spans_dir / WITHDRAWN_DIR)
    return max(used) + 1 if used else 0


def read_manifest(spans_dir: Path, span: int) -> dict:
    return json.loads((span_dir(spans_dir, span) / MANIFEST_FILE).read_text())


@functools.cache
def _tensorflow():
    """TensorFlow, imported on first use (parsing and reporting need none), quietly."""
    with quiet_imports():
        import tensorflow

    return tensorflow


def to_example_bytes(row: Row) -> bytes:
    tf = _tensorflow()
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                features.TITLE: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[row.title.encode("utf-8")])
                ),
                features.TAGS: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[t.encode("utf-8") for t in row.tags])
                ),
            }
        )
    )
    return example.SerializeToString(deterministic=True)


def write_span(
    spans_dir: Path,
    span: int,
    records: Iterable[bytes],
    manifest_extra: dict | Callable[[], dict],
    check: Callable[[], None] | None = None,
) -> tuple[dict, str]:
    """Write serialized tf.Examples as span `span`; (manifest, "written" or "unchanged").
    The records stream to a staging file. manifest_extra: fields for the manifest, or a
    function giving them once every record is written; check(), if given, runs then too
    and may refuse the span (SpanRefusedError), leaving nothing behind."""
    tf = _tensorflow()

    spans_dir.mkdir(parents=True, exist_ok=True)
    staging = spans_dir / f".span-{span}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    count = 0
    try:
        with tf.io.TFRecordWriter(str(staging / DATA_FILE)) as writer:
            for record in records:
                writer.write(record)
                count += 1
        if check is not None:
            check()
        extra = manifest_extra() if callable(manifest_extra) else manifest_extra
        manifest = {
            "span": span,
            "examples": count,
            "sha256": file_sha256(staging / DATA_FILE),
            **extra,
        }
        final = span_dir(spans_dir, span)
        if span_dir(spans_dir / WITHDRAWN_DIR, span).exists():
            raise SpanConflictError(
                f"span {span} was withdrawn from {spans_dir}; its number is not reused: "
                "import the replacement as the next span (--span next)"
            )
        if final.exists():
            old = read_manifest(spans_dir, span)
            if old["sha256"] == manifest["sha256"]:
                return old, "unchanged"
            raise SpanConflictError(
                f"span {span} already exists in {spans_dir} with different content "
                f"(sha256 {old['sha256'][:12]} vs {manifest['sha256'][:12]}); "
                "spans are immutable: import new data as the next span"
            )
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        staging.rename(final)
        return manifest, "written"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
