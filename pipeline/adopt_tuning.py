"""Adopt a tuning run's best hyperparameters as the reviewed file untuned runs train with.

    make tune        (a pipeline run with the Tuner, then this)
    python -m pipeline.adopt_tuning [--metadata PATH]

Takes the newest Tuner output in ML Metadata, prints the values that change, and writes
hyperparameters/best_hyperparameters.txt. Review the diff and commit it, as with the schema.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline import configs, metadata, paths


def latest_tuned(store) -> tuple[str, dict]:
    """(uri, best hyperparameters config) of the newest artifact the Tuner wrote."""
    tuned = [
        a for a in store.get_artifacts_by_type("HyperParameters")
        if metadata.node_name(store, metadata.producer(store, a.id)) == "Tuner"
    ]  # fmt: skip
    if not tuned:
        raise SystemExit("no tuning run in ML Metadata: run `make tune` first")
    newest = max(tuned, key=lambda a: a.id)
    return newest.uri, json.loads(Path(newest.uri, "best_hyperparameters.txt").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", type=Path, default=paths.metadata_path())
    args = parser.parse_args(argv)
    uri, tuned = latest_tuned(metadata.sqlite_store(str(args.metadata)))
    target = paths.CHECKOUT / configs.HYPERPARAMETERS_FILE
    current = json.loads(target.read_text())["values"]
    for name, value in tuned["values"].items():
        mark = "  " if current.get(name) == value else "* "
        print(f"{mark}{name:<14} {current.get(name)!s:>8} -> {value}")
    target.write_text(json.dumps(tuned, indent=2) + "\n")
    print(f"wrote {target} from {uri}: review the diff and commit it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
