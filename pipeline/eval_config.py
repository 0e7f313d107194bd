"""The Evaluator's TFMA configuration: which metrics, and what it takes to be blessed."""

from __future__ import annotations

import json

from tensorflow_model_analysis.proto import config_pb2

from contract import features

# Metric names as TFMA reports them.
F1 = "f1_score"
PRECISION = "precision"
RECALL = "recall"
AUC = "auc"
AVERAGE_PRECISION = "auc_precision_recall"
EXACT_MATCH = "exact_match"
GATED = (F1, AUC, AVERAGE_PRECISION, EXACT_MATCH)
# Where the custom metrics live: the module code, installed as a package.
CUSTOM = "modules.metrics"


def _metric(
    class_name: str,
    floors: dict[str, float],
    tolerance: float,
    name: str,
    module: str = "",
    **config,
) -> config_pb2.MetricConfig:
    metric = config_pb2.MetricConfig(
        class_name=class_name, module=module, config=json.dumps(config) if config else ""
    )
    if name in floors:
        # The gate is on the whole test split: a plain `threshold` would apply to every
        # slice too, and a small slice would block a model that is better overall.
        gate = metric.per_slice_thresholds.add(slicing_specs=[config_pb2.SlicingSpec()])
        gate.threshold.value_threshold.lower_bound.value = floors[name]
        change = gate.threshold.change_threshold
        change.direction = config_pb2.MetricDirection.HIGHER_IS_BETTER
        change.absolute.value = -tolerance
    return metric


def make_eval_config(floors: dict[str, float], tolerance: float) -> config_pb2.EvalConfig:
    """floors: absolute lower bounds by metric name (any of GATED); tolerance: how much worse
    than the latest blessed model a candidate may be on each gated metric."""
    unknown = set(floors) - set(GATED)
    if unknown:
        raise ValueError(f"no blessing floor can be set on {sorted(unknown)}; gated: {GATED}")
    micro = config_pb2.MetricsSpec(
        metrics=[
            _metric("ExampleCount", floors, tolerance, "example_count"),
            # TFMA's Precision, Recall, F1Score, AUC and AUCPrecisionRecall, with their
            # names and keys, counted per example instead of per tag (modules/metrics.py).
            _metric("MicroPrecision", floors, tolerance, PRECISION, module=CUSTOM),
            _metric("MicroRecall", floors, tolerance, RECALL, module=CUSTOM),
            _metric("MicroF1Score", floors, tolerance, F1, module=CUSTOM),
            _metric("MicroAUC", floors, tolerance, AUC, module=CUSTOM, num_thresholds=2000),
            _metric(
                "MicroAUCPrecisionRecall",
                floors,
                tolerance,
                AVERAGE_PRECISION,
                module=CUSTOM,
                num_thresholds=2000,
            ),
        ],
        aggregate=config_pb2.AggregationOptions(micro_average=True),
    )
    # Per tag: precision, recall, F1 and the share of examples carrying the tag (times
    # example_count, its support), keyed by class_id as TFMA's binarize option would key
    # them, computed for all tags at once (modules/metrics.py says why).
    # TFMA's own ExactMatch compares raw values; ours thresholds the multi-hot scores first.
    custom = config_pb2.MetricsSpec(
        metrics=[
            _metric("PerTagMetrics", floors, tolerance, "per_tag", module=CUSTOM),
            _metric("SubsetAccuracy", floors, tolerance, EXACT_MATCH, module=CUSTOM),
        ]
    )
    return config_pb2.EvalConfig(
        model_specs=[
            config_pb2.ModelSpec(
                signature_name=features.EVAL_SIGNATURE,
                prediction_key=features.OUTPUT_DECISION_SCORES,
                label_key=features.LABEL,
                preprocessing_function_names=[features.TRANSFORM_SIGNATURE],
            )
        ],
        # Overall, and by slices of the transformed features made for it (preprocessing_fn).
        slicing_specs=[
            config_pb2.SlicingSpec(),
            config_pb2.SlicingSpec(feature_keys=[features.TITLE_WORDS]),
            config_pb2.SlicingSpec(feature_keys=[features.TRUE_TAGS]),
        ],
        metrics_specs=[micro, custom],
    )
