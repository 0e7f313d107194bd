"""Run the tagger pipeline on this machine: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

    python local_runner.py [--train-spans FIRST-LAST] [--workers N] [--train-steps N] [--no-cache]

The mirror of vertex_runner.py: the pipeline and its settings come from
pipeline/configs.py, the paths from contract/paths.py (TAGGER_* variables or flags).
Prints one line per component and what was pushed; the full log goes to a file.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

from contract import paths, quiet, serving_layout
from ingest import spans
from pipeline import configs, metadata, run_report, runner_flags


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spans-dir", type=Path, default=paths.spans_dir())
    p.add_argument("--pipeline-root", type=Path, default=paths.pipeline_root())
    p.add_argument("--metadata", type=Path, default=paths.metadata_path())
    # A string, not a Path: Path("gs://b/x") would collapse the scheme's "//".
    p.add_argument(
        "--serving-dir",
        default=str(paths.serving_dir()),
        help="TF Serving base directory, local or gs://; the model goes to <dir>/"
        f"{serving_layout.MODEL_NAME}/<version>",
    )
    p.add_argument("--logs-dir", type=Path, default=paths.logs_dir())
    # Each worker process starts TensorFlow and the component's libraries again for
    # every Beam stage; on a few cores that costs more than the second core gives back,
    # so the default runs Beam in this process (docs/learning.md: How fast it learns).
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Beam DirectRunner worker processes; 0 (the default) runs Beam in this process",
    )
    runner_flags.add_pipeline_flags(p)
    p.add_argument("--verbose", action="store_true", help="everything on the terminal, no log file")
    return p.parse_args(argv)


def build_pipeline(args: argparse.Namespace):
    from tfx import v1 as tfx  # slow to import: after the arguments are checked

    from pipeline.pipeline import create_pipeline

    return create_pipeline(
        **runner_flags.pipeline_settings(args),
        pipeline_root=str(args.pipeline_root),
        spans_dir=str(args.spans_dir),
        schema_path=str(paths.schema_path()),
        hyperparameters_dir=str(paths.hyperparameters_dir(args.encoder)),
        serving_model_dir=f"{args.serving_dir.rstrip('/')}/{serving_layout.MODEL_NAME}",
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(args.metadata)
        ),
        beam_pipeline_args=runner_flags.direct_runner_args(args.workers),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not spans.existing_spans(args.spans_dir):
        print(
            f"local_runner: error: no data span under {args.spans_dir}; "
            "run `python -m ingest` first",
            file=sys.stderr,
        )
        return 1
    args.pipeline_root.mkdir(parents=True, exist_ok=True)
    args.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = args.logs_dir / f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}.log"
    started_ms = int(time.time() * 1000)
    where = "output below (--verbose)" if args.verbose else f"full log in {log_path}"
    print(f"pipeline {configs.PIPELINE_NAME}: {where}", flush=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def store():
        return metadata.sqlite_store(str(args.metadata))

    terminal = contextlib.nullcontext(print) if args.verbose else quiet.output_to(log_path)
    failure = None
    began = time.monotonic()
    with terminal as say, run_report.MetadataProgress(store, started_ms, say):
        try:
            from tfx import v1 as tfx

            tfx.orchestration.LocalDagRunner().run(build_pipeline(args))
        except Exception as err:  # the report below says where and why
            logging.exception("the pipeline run failed")
            failure = err
    logging.getLogger().setLevel(logging.WARNING)  # the log file has had everything
    run = metadata.this_run(store(), started_ms) if args.metadata.exists() else None
    if failure is not None:
        print("\n".join(run_report.error_lines(failure)), file=sys.stderr)
        if not args.verbose:
            print(f"(full log: {log_path})", file=sys.stderr)
    summary = run_report.outcome(store(), run) if run else "nothing pushed: the run did not start"
    print(f"{summary} ({time.monotonic() - began:.0f} s)")
    return 1 if failure is not None else 0


if __name__ == "__main__":
    sys.exit(main())
