"""python -m monitoring --logs PREFIX [--window-seconds 600] [--out DIR] ...

Judges each complete window of the request log (the app's --request-log) against the
training spans (skew) and the window before (drift), with the thresholds in
monitoring/thresholds.json, and records each window in --out and in ML Metadata. Run it
on a schedule (every window); it picks up where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contract import paths
from contract.quiet import quiet_imports

THRESHOLDS = Path(__file__).resolve().parent / "thresholds.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m monitoring", description=__doc__.split("\n")[0])
    p.add_argument("--logs", required=True, help="the request log: a directory or gs:// prefix")
    p.add_argument("--window-seconds", type=int, default=600)
    p.add_argument(
        "--out",
        default=str(paths.build_dir() / "monitoring"),
        help="where records go: a directory or gs:// prefix",
    )
    p.add_argument("--model-base-path", default=str(paths.serving_model_dir()))
    p.add_argument("--spans", default=str(paths.spans_dir()))
    p.add_argument("--thresholds", type=Path, default=THRESHOLDS)
    p.add_argument(
        "--metadata",
        default=str(paths.metadata_path()),
        help="ML Metadata store to record windows in ('' for none)",
    )
    args = p.parse_args(argv)
    with quiet_imports():
        from monitoring import compare, job, metadata

    record = metadata.writer(args.metadata) if args.metadata else None
    results = job.run(
        args.logs,
        args.model_base_path,
        args.spans,
        args.out,
        compare.Thresholds.load(args.thresholds),
        args.window_seconds,
        record=record,
    )
    for r in results:
        state = "ALARM" if r["alarm"] else ("above" if r["above"] else "ok")
        print(
            f"window {r['window_start']}: {r['requests']} requests, {state} "
            f"{' '.join(r['above'])}".rstrip(),
            flush=True,
        )
    print(f"{len(results)} windows judged; latest in {args.out.rstrip('/')}/latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
