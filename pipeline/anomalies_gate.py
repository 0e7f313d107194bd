"""Stops the run when ExampleValidator found anomalies.

ExampleValidator records anomalies but blocks nothing; this component fails the run
(before Transform, Trainer and Pusher) and says which feature broke which constraint,
which spans the run read, and how to take a bad one out.
"""

# No `from __future__ import annotations`: the TFX decorator reads real type objects.

import json
import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from contract import metadata_names as names
from ingest.spans import WITHDRAW_HINT

SCHEMA_DIFF_FILE = "SchemaDiff.pb"  # ExampleValidator's file name per split


class DataAnomaliesError(RuntimeError):
    pass


def describe_anomalies(anomalies_uri: str, split_names: list[str]) -> list[str]:
    problems = []
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", SCHEMA_DIFF_FILE)
        report = anomalies_pb2.Anomalies()
        with fileio.open(path, "rb") as f:
            report.ParseFromString(f.read())
        for feature, info in sorted(report.anomaly_info.items()):
            reasons = "; ".join(r.short_description or r.description for r in info.reason)
            problems.append(f"[{split}] feature '{feature}': {reasons} ({info.description})")
        if report.HasField("dataset_anomaly_info"):
            reasons = "; ".join(r.description for r in report.dataset_anomaly_info.reason)
            problems.append(f"[{split}] dataset: {reasons}")
    return problems


@tfx.dsl.components.component
def AnomaliesGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
) -> None:
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    problems = describe_anomalies(anomalies.uri, splits)
    if problems:
        read = json.loads(examples.get_string_custom_property(names.SPANS) or "[]")
        message = (
            "data anomalies, the run stops here:\n  "
            + "\n  ".join(problems)
            + f"\nspans read: {', '.join(str(s['span']) for s in read)}; {WITHDRAW_HINT}"
        )
        print(message, flush=True)
        raise DataAnomaliesError(message)
