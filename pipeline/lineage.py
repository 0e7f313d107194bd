"""Where did the served model come from?  python -m pipeline.lineage [--metadata PATH]

Prints, from ML Metadata, the latest pushed model's Trainer run, Transform graph, schema,
data spans with their content hashes, the Evaluator's overall metrics, and what
happened to it once pushed: the rollout controller's events (canary, promoted, rolled
back, with their checks) from the record it keeps beside the versions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tfx.dsl.io import fileio

from contract import paths, serving_layout
from pipeline import evaluation, metadata


def rollout_events(destination: str, version: str) -> list[dict]:
    """The controller's events for a pushed version ([] while it has none)."""
    path = serving_layout.rollout_path(destination.rstrip("/").rsplit("/", 1)[0], version)
    if not fileio.exists(path):
        return []
    with fileio.open(path) as f:
        return json.loads(f.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", type=Path, default=paths.metadata_path())
    args = parser.parse_args(argv)
    if not args.metadata.exists():
        print(f"lineage: error: no ML Metadata store at {args.metadata}", file=sys.stderr)
        return 1
    try:
        found = metadata.lineage(metadata.sqlite_store(str(args.metadata)))
    except LookupError as err:
        print(f"lineage: error: {err}", file=sys.stderr)
        return 1
    found["evaluation"]["metrics"] = evaluation.overall(evaluation.load(found["evaluation"]["uri"]))
    pushed = found["pushed_model"]
    pushed["rollout"] = rollout_events(pushed["destination"], str(pushed["version"]))
    print(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
