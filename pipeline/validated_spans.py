"""Which data spans a run trains and evaluates on.

ExampleGen ingests one span per run (the newest, or the one asked for), and that span
goes through StatisticsGen, ExampleValidator and the anomalies gate. This resolver then
hands Transform, Trainer and Evaluator every span in the requested range that passed
validation, one Examples artifact per span (the newest: a span re-ingested by an
uncached run must not be counted twice). TFX's SpanRangeStrategy does neither check.
"""

from __future__ import annotations

from google.protobuf import json_format
from ml_metadata import metadata_store
from tfx import types
from tfx.dsl.components.common import resolver

from pipeline.metadata import Event, artifacts_of, consumers

SPAN = "span"  # ExampleGen's custom property
BLESSED = "blessed"  # ExampleValidator's per-split verdict on its anomalies artifact


def passed_validation(store: metadata_store.MetadataStore, examples_id: int) -> bool:
    """True when an ExampleValidator run over these examples' statistics found no anomaly."""
    for statistics_gen in consumers(store, examples_id):
        for statistics in artifacts_of(store, statistics_gen.id, Event.OUTPUT).get(
            "statistics", []
        ):
            for validator in consumers(store, statistics.id):
                for anomalies in artifacts_of(store, validator.id, Event.OUTPUT).get(
                    "anomalies", []
                ):
                    if BLESSED not in anomalies.custom_properties:
                        continue
                    verdict = json_format.MessageToDict(
                        anomalies.custom_properties[BLESSED].struct_value
                    )
                    if verdict and all(v == 1 for v in verdict.values()):
                        return True
    return False


class ValidatedSpansStrategy(resolver.ResolverStrategy):
    def __init__(self, start_span: int, end_span: int) -> None:
        self._start, self._end = start_span, end_span

    def resolve_artifacts(
        self,
        store: metadata_store.MetadataStore,
        input_dict: dict[str, list[types.Artifact]],
    ) -> dict[str, list[types.Artifact]] | None:
        result = {}
        for key, artifacts in input_dict.items():
            newest: dict[int, types.Artifact] = {}
            for artifact in artifacts:
                span = artifact.get_int_custom_property(SPAN)
                if not self._start <= span <= self._end:
                    continue
                if span in newest and newest[span].id > artifact.id:
                    continue
                if passed_validation(store, artifact.id):
                    newest[span] = artifact
            result[key] = [newest[s] for s in sorted(newest)]
        return result if all(result.values()) else None
