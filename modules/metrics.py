"""Custom TFMA metric, loaded by module path (see pipeline/eval_config.py).

TFMA's own ExactMatch compares raw values (it is meant for text outputs); a multi-label
tagger needs its scores thresholded first. TFMA is fed the model's decision-centred
scores, so 0.5 is the model's own decision threshold.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

EXACT_MATCH_NAME = "exact_match"


class SubsetAccuracy(metric_types.Metric):
    """Fraction of examples whose predicted tag set equals the true tag set."""

    def __init__(self, name: str = EXACT_MATCH_NAME, threshold: float = 0.5) -> None:
        super().__init__(
            metric_util.merge_per_key_computations(_subset_accuracy),
            name=name,
            threshold=threshold,
        )


def _subset_accuracy(
    name: str = EXACT_MATCH_NAME,
    threshold: float = 0.5,
    eval_config=None,
    model_name: str = "",
    output_name: str = "",
    example_weighted: bool = False,
    **_unused,
) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(
        name=name,
        model_name=model_name,
        output_name=output_name,
        example_weighted=example_weighted,
    )
    return [
        metric_types.MetricComputation(
            keys=[key],
            preprocessors=None,
            combiner=_SubsetAccuracyCombiner(key, eval_config, threshold, example_weighted),
        )
    ]


class _SubsetAccuracyCombiner(beam.CombineFn):
    def __init__(self, key, eval_config, threshold: float, example_weighted: bool) -> None:
        self._key = key
        self._eval_config = eval_config
        self._threshold = threshold
        self._example_weighted = example_weighted

    def create_accumulator(self) -> list[float]:
        return [0.0, 0.0]  # weighted matches, weighted examples

    def add_input(self, accumulator: list[float], element) -> list[float]:
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._key.model_name,
            output_name=self._key.output_name,
            example_weighted=self._example_weighted,
            flatten=False,
        ):
            weight = metric_util.safe_to_scalar(weight)
            match = np.array_equal(
                np.asarray(label) >= 0.5, np.asarray(prediction) >= self._threshold
            )
            accumulator[0] += weight * match
            accumulator[1] += weight
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list[float]]) -> list[float]:
        total = [0.0, 0.0]
        for matches, examples in accumulators:
            total[0] += matches
            total[1] += examples
        return total

    def extract_output(self, accumulator: list[float]) -> dict:
        matches, examples = accumulator
        return {self._key: matches / examples if examples else float("nan")}


metric_types.register_metric(SubsetAccuracy)
