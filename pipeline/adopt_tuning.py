"""Adopt a tuning run's best hyperparameters as the reviewed file untuned runs train with.

    make tune        (a pipeline run with the Tuner, then this)
    python -m pipeline.adopt_tuning [--metadata PATH]

Takes the newest Tuner output in ML Metadata, prints the values that change, and writes
the reviewed file of the setting it was tuned with (hyperparameters/default/ or, when its
Transform made the encoder's embedding, hyperparameters/encoder/). Review the diff and
commit it, as with the schema.
Only values whose model the Evaluator blessed are adopted (--force takes them anyway): a
search can end on values that tag worse than the ones committed, and the blessing is
where the pipeline compares the two.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from contract import paths
from pipeline import configs, metadata, run_report


def latest_tuned(store):
    """The newest HyperParameters artifact the Tuner wrote."""
    tuned = [
        a
        for a in store.get_artifacts_by_type("HyperParameters")
        if metadata.node_name(store, metadata.producer(store, a.id)) == "Tuner"
    ]
    if not tuned:
        raise SystemExit("no tuning run in ML Metadata: run `make tune` first")
    return max(tuned, key=lambda a: a.id)


def tuned_with_encoder(store, tuned) -> bool:
    """Whether the Tuner searched on the encoder setting's features (--encoder)."""
    tuner = metadata.producer(store, tuned.id)
    (graph,) = metadata.artifacts_of(store, tuner.id, metadata.Event.INPUT)["transform_graph"]
    transform = metadata.producer(store, graph.id)
    preprocessing_fn = metadata.value(transform.custom_properties, "preprocessing_fn")
    return preprocessing_fn == configs.PREPROCESSING_FN_WITH_ENCODER


def consumer(store, artifact_id: int, key: str, node: str):
    """The newest execution of node that read the artifact as its input key, or None."""
    found = [
        e
        for e in metadata.consumers(store, artifact_id, key)
        if metadata.node_name(store, e) == node
    ]
    return found[-1] if found else None


def why_not_blessed(store, tuned) -> str | None:
    """None when the model trained with the tuned values was blessed, else why not."""
    trainer = consumer(store, tuned.id, "hyperparameters", "Trainer")
    if trainer is None:
        return "no Trainer trained with them: the tuning run stopped before it"
    (model,) = metadata.artifacts_of(store, trainer.id, metadata.Event.OUTPUT)["model"]
    evaluator = consumer(store, model.id, "model", "Evaluator")
    if evaluator is None:
        return "the Evaluator never scored the model trained with them"
    (blessing,) = metadata.artifacts_of(store, evaluator.id, metadata.Event.OUTPUT)["blessing"]
    if metadata.is_blessed(blessing):
        return None
    failed = run_report.failing_metrics(store, blessing)
    return f"the Evaluator did not bless the model trained with them {failed}".rstrip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", type=Path, default=paths.metadata_path())
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="the file to write (default: the setting's reviewed one)",
    )
    parser.add_argument(
        "--force", action="store_true", help="adopt the values even if their model was not blessed"
    )
    args = parser.parse_args(argv)
    store = metadata.sqlite_store(str(args.metadata))
    artifact = latest_tuned(store)
    encoder = tuned_with_encoder(store, artifact)
    reviewed = paths.hyperparameters_file(encoder)
    uri, target = artifact.uri, args.output or reviewed
    tuned = json.loads(Path(uri, paths.HYPERPARAMETERS_FILE_NAME).read_text())
    reason = why_not_blessed(store, artifact)
    if reason and not args.force:
        print(
            f"not adopted: {reason}; {target} is unchanged (--force adopts them anyway)",
            file=sys.stderr,
        )
        return 1
    current = json.loads((target if target.exists() else reviewed).read_text())["values"]
    for name, value in tuned["values"].items():
        mark = "  " if current.get(name) == value else "* "
        print(f"{mark}{name:<19} {current.get(name)!s:>8} -> {value}")
    target.write_text(json.dumps(tuned, indent=2) + "\n")
    print(f"wrote {target} from {uri}: review the diff and commit it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
