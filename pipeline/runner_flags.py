"""The pipeline settings both runners take on their command line, parsed one way.

Each runner adds its own flags for where things live and how they run; these say what
the run does, and their defaults come from pipeline/configs.py.
"""

from __future__ import annotations

import argparse

from contract import paths
from modules import code_version, file_version
from pipeline import configs


def add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--train-spans",
        type=parse_span_range,
        default=None,
        metavar="FIRST-LAST",
        help="spans to read, validate and train on, e.g. 0-3 (default: every span present)",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=configs.TRAIN_STEPS,
        help="total training steps (default: full passes over the train split, early-stopped)",
    )
    parser.add_argument("--eval-steps", type=int, default=configs.EVAL_STEPS)
    parser.add_argument("--epochs", type=int, default=None, help="at most this many epochs")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the Trainer's random seed (default: modules/trainer.py's TRAINING)",
    )
    parser.add_argument(
        "--floors",
        type=parse_floors,
        default=None,
        help="blessing floors as metric=value,... (see configs.py)",
    )
    parser.add_argument(
        "--blessing-tolerance",
        type=float,
        default=configs.BLESSING_TOLERANCE,
        help="how much worse than the latest blessed model a new one may be",
    )
    parser.add_argument(
        "--warm-start",
        action="store_true",
        help="train from the latest blessed model's weights, for a few epochs",
    )
    parser.add_argument(
        "--tune",
        type=int,
        nargs="?",
        const=configs.TUNING_TRIALS,
        default=0,
        metavar="TRIALS",
        help="run the Tuner with this many trials (default %(const)s) and train with its "
        "best hyperparameters; without it the Trainer uses the setting's reviewed values, "
        + " or ".join(f"{d}/" for d in paths.HYPERPARAMETERS_DIRS.values()),
    )
    parser.add_argument(
        "--tune-epochs",
        type=int,
        default=configs.TUNING_EPOCHS,
        help="epochs per tuning trial, at most (default %(default)s)",
    )
    parser.add_argument(
        "--encoder",
        action="store_true",
        help="add the pretrained MiniLM encoder's title embedding to the model's inputs: "
        "better tags, about 6 ms more CPU per title served and minutes more per run "
        "(modules/encoder.py)",
    )
    parser.add_argument("--no-cache", action="store_true", help="run every component again")


def parse_floors(text: str) -> dict[str, float]:
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--floors: expected metric=value,..., got {text!r}"
        ) from None


def parse_span_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--train-spans: expected FIRST-LAST, got {text!r}"
        ) from None


def pipeline_settings(args: argparse.Namespace) -> dict:
    """create_pipeline() keyword arguments that do not depend on the runner."""
    return dict(
        pipeline_name=configs.PIPELINE_NAME,
        preprocessing_fn=(
            configs.PREPROCESSING_FN_WITH_ENCODER if args.encoder else configs.PREPROCESSING_FN
        ),
        run_fn=configs.RUN_FN,
        tuner_fn=configs.TUNER_FN,
        code_version=code_version(),
        # The image is built from this checkout: its reviewed files are the same ones.
        reviewed_files_version={
            "schema": file_version(paths.schema_path()),
            "hyperparameters": file_version(paths.hyperparameters_file(args.encoder)),
        },
        tuning={"max_trials": args.tune, "epochs": args.tune_epochs} if args.tune else None,
        train_steps=args.train_steps,
        eval_steps=args.eval_steps,
        blessing_floors=args.floors or dict(configs.BLESSING_FLOORS),
        blessing_tolerance=args.blessing_tolerance,
        train_spans=args.train_spans,
        warm_start=args.warm_start,
        trainer_config={
            name: value
            for name, value in (("epochs", args.epochs), ("seed", args.seed))
            if value is not None
        },
        enable_cache=not args.no_cache,
    )


def direct_runner_args(workers: int) -> list[str]:
    """Beam DirectRunner arguments: worker processes, or (0) everything in this process."""
    if workers == 0:
        return ["--direct_running_mode=in_memory"]
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
