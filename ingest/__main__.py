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

    def too_many_bad() -> None:
        """Before the span is published: the import fails, and writes nothing, when too
        many rows were bad or none was good."""
        print(json.dumps({"source": str(source), **report.as_dict()}, indent=2))
        if report.bad_fraction > args.max_bad_fraction:
            raise spans.SpanRefusedError(
                f"{report.bad_fraction:.2%} of rows are bad, more than the allowed "
                f"{args.max_bad_fraction:.2%}; nothing written"
            )
        if not report.good:
            raise spans.SpanRefusedError("no good rows; nothing written")

    # The rows stream from the file into the span, one at a time: the import's memory
    # does not grow with the file. The report's figures are known once all are read.
    with open(source, "rb") as f:
        try:
            manifest, status = spans.write_span(
                args.spans_dir,
                span,
                map(spans.to_example_bytes, seed_tsv.read_rows(f, report)),
                lambda: {
                    spans.SOURCE: source.name,
                    "source_sha256": file_sha256(source),
                    "report": report.as_dict(),
                },
                check=too_many_bad,
            )
        except (spans.SpanConflictError, spans.SpanRefusedError) as err:
            print(f"ingest: error: {err}", file=sys.stderr)
            return 1
    print(
        f"ingest: span {span} {status}: {manifest['examples']} examples, "
        f"sha256 {manifest['sha256']} in {spans.span_dir(args.spans_dir, span)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
