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

from pipeline.metadata import SPAN, consumers, outputs_of

BLESSED = "blessed"  # ExampleValidator's per-split verdict on its anomalies artifact


def blessed_on_every_split(anomalies) -> bool:
    if BLESSED not in anomalies.custom_properties:
        return False
    verdict = json_format.MessageToDict(anomalies.custom_properties[BLESSED].struct_value)
    return bool(verdict) and all(v == 1 for v in verdict.values())


def passed_validation(store: metadata_store.MetadataStore, examples_id: int) -> bool:
    """True when an ExampleValidator run over these examples' statistics found no anomaly."""
    statistics = outputs_of(store, consumers(store, examples_id), "statistics")
    validators = [v for s in statistics for v in consumers(store, s.id)]
    return any(blessed_on_every_split(a) for a in outputs_of(store, validators, "anomalies"))


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
