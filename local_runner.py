"""Run the tagger pipeline on this machine: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

    python local_runner.py [--span N] [--workers 2] [--train-steps 1200] [--no-cache]

Paths default to build/ in the checkout and can be set by flags or TAGGER_* variables.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tfx import v1 as tfx

from ingest import spans
from pipeline import metadata
from pipeline.pipeline import create_pipeline

PIPELINE_NAME = "so-tagger"
MODEL_NAME = "tagger"
HERE = Path(__file__).resolve().parent

# Blessing floors for the full data set: well below what the model reaches (see the
# closing note of issue 2) and above what a broken model gets.
FLOORS = {"f1_score": 0.55, "auc": 0.90, "auc_precision_recall": 0.5, "exact_match": 0.25}
TOLERANCE = 0.01


def _env_path(name: str, default: Path) -> Path:
    return Path(os.environ.get(name, default)).resolve()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    build = _env_path("TAGGER_BUILD_DIR", HERE / "build")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spans-dir", type=Path, default=_env_path("TAGGER_SPANS_DIR", build / "spans"))
    p.add_argument("--pipeline-root", type=Path, default=build / "pipeline")
    p.add_argument("--metadata", type=Path, default=build / "metadata.sqlite")
    p.add_argument(
        "--serving-dir", type=Path, default=_env_path("TAGGER_SERVING_DIR", build / "serving")
    )
    p.add_argument(
        "--span", type=int, default=None, help="span to ingest and validate (default: the latest)"
    )
    p.add_argument(
        "--train-spans",
        default=None,
        metavar="FIRST-LAST",
        help="spans to train and evaluate on, e.g. 0-3 (default: all that passed validation)",
    )
    p.add_argument("--workers", type=int, default=2, help="Beam DirectRunner worker processes")
    p.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="total training steps (default: full passes over the train split, early-stopped)",
    )
    p.add_argument("--eval-steps", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--floors", default=None, help="blessing floors as metric=value,...")
    p.add_argument("--no-cache", action="store_true")
    return p.parse_args(argv)


def parse_floors(text: str | None) -> dict[str, float]:
    if not text:
        return dict(FLOORS)
    return {k: float(v) for k, v in (item.split("=") for item in text.split(","))}


def parse_span_range(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    first, _, last = text.partition("-")
    return int(first), int(last or first)


def build_pipeline(args: argparse.Namespace) -> tfx.dsl.Pipeline:
    trainer_config = {"epochs": args.epochs} if args.epochs else {}
    return create_pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=str(args.pipeline_root),
        spans_dir=str(args.spans_dir),
        schema_path=str(HERE / "schema" / "schema.pbtxt"),
        transform_module_file=str(HERE / "modules" / "preprocessing.py"),
        trainer_module_file=str(HERE / "modules" / "trainer.py"),
        serving_model_dir=str(args.serving_dir / MODEL_NAME),
        train_steps=args.train_steps,
        eval_steps=args.eval_steps,
        blessing_floors=parse_floors(args.floors),
        blessing_tolerance=TOLERANCE,
        span=args.span,
        train_spans=parse_span_range(args.train_spans),
        trainer_config=trainer_config,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(args.metadata)
        ),
        beam_pipeline_args=[
            "--direct_running_mode=multi_processing",
            f"--direct_num_workers={args.workers}",
        ],
        enable_cache=not args.no_cache,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not spans.existing_spans(args.spans_dir):
        print(
            f"local_runner: error: no data span under {args.spans_dir}; "
            "run `python -m ingest` first",
            file=sys.stderr,
        )
        return 1
    args.pipeline_root.mkdir(parents=True, exist_ok=True)
    failure = None
    try:
        tfx.orchestration.LocalDagRunner().run(build_pipeline(args))
    except Exception as err:  # the report below still says how far the run got
        failure = err
    if args.metadata.exists():
        print(metadata.format_run_report(metadata.sqlite_store(str(args.metadata))))
    if failure is not None:
        print(f"local_runner: the run failed: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
