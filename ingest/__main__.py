"""Import a labelled TSV file as a data span.

    python -m ingest [--data-dir DIR] [--file train.tsv] [--spans-dir DIR] [--span N|next]

The data directory comes from --data-dir or TAGGER_DATA_DIR, the spans directory from
--spans-dir or contract/paths.py. Bad rows are rejected,
counted by reason and sampled in the report; the import fails (exit 1, nothing written)
when more than --max-bad-fraction of the rows are bad.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from contract import paths
from contract.digests import file_sha256
from ingest import seed_tsv, spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=paths.data_dir())
    parser.add_argument("--file", default="train.tsv", help="file name inside the data directory")
    parser.add_argument("--spans-dir", type=Path, default=paths.spans_dir())
    parser.add_argument("--span", default="0", help="span number, or 'next' for a new span")
    parser.add_argument("--max-bad-fraction", type=float, default=0.01)
    args = parser.parse_args(argv)

    source = args.data_dir / args.file
    if not source.is_file():
        print(
            f"ingest: error: {source} does not exist (see docs/pipeline.md: The data)",
            file=sys.stderr,
        )
        return 1
    if args.span == "next":
        span = spans.next_span(args.spans_dir)
    else:
        span = int(args.span)

    report = seed_tsv.ParseReport()
    with open(source, "rb") as f:
        rows = list(seed_tsv.read_rows(f, report))
    summary = report.as_dict()
    print(json.dumps({"source": str(source), **summary}, indent=2))
    if report.bad_fraction > args.max_bad_fraction:
        print(
            f"ingest: error: {report.bad_fraction:.2%} of rows are bad, more than the allowed "
            f"{args.max_bad_fraction:.2%}; nothing written",
            file=sys.stderr,
        )
        return 1
    if not rows:
        print("ingest: error: no good rows; nothing written", file=sys.stderr)
        return 1
    try:
        manifest, status = spans.write_span(
            args.spans_dir,
            span,
            map(spans.to_example_bytes, rows),
            {
                spans.SOURCE: source.name,
                "source_sha256": file_sha256(source),
                "report": summary,
            },
        )
    except spans.SpanConflictError as err:
        print(f"ingest: error: {err}", file=sys.stderr)
        return 1
    print(
        f"ingest: span {span} {status}: {manifest['examples']} examples, "
        f"sha256 {manifest['sha256']} in {spans.span_dir(args.spans_dir, span)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
