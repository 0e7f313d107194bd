"""The Evaluator's results (TFMA), read one way: overall, per tag, and by slice.

The Evaluator (pipeline/eval_config.py) computes micro-averaged metrics, exact match,
per-tag precision / recall / F1 / mean label, on the whole test split and on slices by
title length and by number of true tags. When a blessed model existed, every metric is
computed for it too (model "baseline") next to the new one ("candidate").
"""

from __future__ import annotations

import dataclasses

from contract import quiet

OVERALL = ""  # the slice name of the whole test split
CANDIDATE, BASELINE = "candidate", "baseline"


@dataclasses.dataclass(frozen=True)
class Metric:
    slice: str  # OVERALL, or "feature=value"
    model: str  # CANDIDATE or BASELINE
    tag_index: int | None  # the class id of a per-tag metric
    name: str  # TFMA's name, "micro_" prefixed when micro-averaged
    value: float


def load(evaluation_uri: str) -> list[Metric]:
    with quiet.quiet_imports():  # slow to import; only needed here
        import tensorflow_model_analysis as tfma

        results = list(tfma.load_metrics(evaluation_uri))  # it warns of its own deprecations
    found = []
    for per_slice in results:
        keys = per_slice.slice_key.single_slice_keys
        name = ",".join(f"{k.column}={_value(k)}" for k in keys)
        for kv in per_slice.metric_keys_and_values:
            if kv.key.is_diff or not kv.value.HasField("double_value"):
                continue
            prefix = "micro_" if kv.key.aggregation_type.micro_average else ""
            tag = kv.key.sub_key.class_id.value if kv.key.sub_key.HasField("class_id") else None
            model = BASELINE if kv.key.model_name == BASELINE else CANDIDATE
            found.append(
                Metric(name, model, tag, prefix + kv.key.name, kv.value.double_value.value)
            )
    return found


def validation_failures(evaluation_uri: str) -> list[str]:
    """The gated metrics the Evaluator failed on, as "name=value", sorted."""
    with quiet.quiet_imports():
        import tensorflow_model_analysis as tfma

        result = tfma.load_validation_result(evaluation_uri)
    failures = {
        f"{f.metric_key.name}={f.metric_value.double_value.value:.4f}"
        for slice_failures in result.metric_validations_per_slice
        for f in slice_failures.failures
    }
    return sorted(failures)


def _value(key) -> str:
    kind = key.WhichOneof("kind")
    value = getattr(key, kind)
    return value.decode() if isinstance(value, bytes) else str(value)


def overall(metrics: list[Metric], model: str = CANDIDATE) -> dict[str, float]:
    """The model's metrics on the whole test split, by name."""
    return dict(
        sorted(
            (m.name, round(m.value, 4))
            for m in metrics
            if m.slice == OVERALL and m.model == model and m.tag_index is None
        )
    )


def per_tag(metrics: list[Metric]) -> dict[int, dict[str, float]]:
    """The candidate's per-tag metrics on the whole test split, by tag index."""
    tags: dict[int, dict[str, float]] = {}
    for m in metrics:
        if m.slice == OVERALL and m.model == CANDIDATE and m.tag_index is not None:
            tags.setdefault(m.tag_index, {})[m.name] = m.value
    return tags


def slices(metrics: list[Metric]) -> dict[str, dict[str, float]]:
    """The candidate's metrics on each slice, by slice name."""
    found: dict[str, dict[str, float]] = {}
    for m in metrics:
        if m.slice != OVERALL and m.model == CANDIDATE and m.tag_index is None:
            found.setdefault(m.slice, {})[m.name] = m.value
    return dict(sorted(found.items()))
