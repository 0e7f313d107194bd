"""Where did the served model come from?  python -m pipeline.lineage [--metadata PATH]

Prints, from ML Metadata, the latest pushed model's Trainer run, Transform graph, schema,
data spans with their content hashes, and the Evaluator's overall metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline import metadata, paths, quiet


def overall_metrics(evaluation_uri: str) -> dict[str, float]:
    with quiet.quiet_imports():  # slow to import; only needed here
        import tensorflow_model_analysis as tfma

        results = list(tfma.load_metrics(evaluation_uri))  # it warns of its own deprecations
    metrics = {}
    for slice_metrics in results:
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for kv in slice_metrics.metric_keys_and_values:
            if kv.key.sub_key.HasField("class_id") or kv.key.is_diff:
                continue
            if kv.key.model_name not in ("", "candidate"):
                continue
            prefix = "micro_" if kv.key.aggregation_type.micro_average else ""
            metrics[prefix + kv.key.name] = round(kv.value.double_value.value, 4)
    return dict(sorted(metrics.items()))


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
    found["evaluation"]["metrics"] = overall_metrics(found["evaluation"]["uri"])
    print(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
