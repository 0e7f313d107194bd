"""Take a bad span out of training: python -m ingest.withdraw --span N --reason TEXT

The span moves to <spans dir>/withdrawn/span-N/ with a WITHDRAWN.json that says when and
why. Pipeline runs read only spans directly under the spans directory, so the next run
trains without it (its ExampleGen fingerprint changes, nothing is cached stale). Its
number is never reused: import corrected data as a new span (`python -m ingest --span
next`). Models already trained on it keep that fact in their lineage.

For spans in a bucket (Vertex AI) the learning worker withdraws its own spans the same
way (learning/span_store.py); by hand, use the storage tool, e.g.
`gcloud storage mv gs://BUCKET/spans/span-N gs://BUCKET/spans/withdrawn/span-N`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from contract import paths
from ingest import spans

RECORD_FILE = "WITHDRAWN.json"


def record(span: int, reason: str, manifest: dict) -> str:
    """The text of RECORD_FILE: which span, why, when, and the manifest it had."""
    withdrawn_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    fields = {"span": span, "reason": reason, "withdrawn_at": withdrawn_at, "manifest": manifest}
    return json.dumps(fields, indent=2) + "\n"


def withdraw(spans_dir: Path, span: int, reason: str) -> Path:
    """Move span `span` out of the spans read by the pipeline; returns its new place."""
    source = spans.span_dir(spans_dir, span)
    if not source.is_dir():
        raise FileNotFoundError(f"no span {span} under {spans_dir}")
    target = spans.span_dir(spans_dir / spans.WITHDRAWN_DIR, span)
    target.parent.mkdir(parents=True, exist_ok=True)
    (source / RECORD_FILE).write_text(record(span, reason, spans.read_manifest(spans_dir, span)))
    source.rename(target)  # one rename: a run sees the span whole or not at all
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.withdraw", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--span", type=int, required=True)
    parser.add_argument("--reason", required=True, help="why, for whoever reads it later")
    parser.add_argument("--spans-dir", type=Path, default=paths.spans_dir())
    args = parser.parse_args(argv)
    try:
        target = withdraw(args.spans_dir, args.span, args.reason)
    except FileNotFoundError as err:
        print(f"withdraw: error: {err}", file=sys.stderr)
        return 1
    print(f"withdraw: span {args.span} moved to {target}; the next run trains without it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
