"""Custom TFMA metrics, loaded by module path (see pipeline/eval_config.py).

TFMA's own ExactMatch compares raw values (it is meant for text outputs); a multi-label
tagger needs its scores thresholded first. TFMA is fed the model's decision-centred
scores, so 0.5 is the model's own decision threshold.

PerTagMetrics gives what TFMA's binarize option gives (precision, recall, F1 and the
share of examples carrying each tag, keyed by class_id), counted for all tags at once
with numpy: binarize copies every example once per tag.

The micro-averaged metrics (MicroPrecision, MicroRecall, MicroF1Score, MicroAUC,
MicroAUCPrecisionRecall) are TFMA's Precision, Recall, F1Score, AUC and
AUCPrecisionRecall under a micro_average MetricsSpec, with the same names and metric
keys, so the gate and every reader see what TFMA would give them. TFMA flattens each
example into one Python value per tag on the way to its confusion matrices; these count
each example's tags in one numpy call, and take the metric's value from the TFMA
metric's own formula. The confusion matrices are counted exactly at each threshold
(TFMA reads its AUCs from a 10,000-bucket histogram), so AUCs can differ from TFMA's in
the fourth decimal. The AUC formula and the threshold spacing are TFMA's private
functions, at the version requirements.lock pins; tests/test_pipeline_parts.py checks
the values against scikit-learn, so a TFMA upgrade that moves them shows there.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import (
    binary_confusion_matrices,
    confusion_matrix_metrics,
    metric_types,
    metric_util,
)

EXACT_MATCH_NAME = "exact_match"
PER_TAG_NAME = "per_tag"
# The private (not reported) key of the micro metrics' shared confusion matrices.
MICRO_MATRICES_NAME = "_micro_confusion_matrices"
# The names TFMA's binarized metrics have; the quality report reads them.
PER_TAG_METRICS = ("precision", "recall", "f1_score", "mean_label")


def _computations(combiner_class):
    """A create_computations_fn for merge_per_key_computations: one combiner per model
    and output, of combiner_class."""

    def computations(
        name: str,
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
        combiner = combiner_class(key, eval_config, threshold, example_weighted)
        return [metric_types.MetricComputation(keys=[key], preprocessors=None, combiner=combiner)]

    return computations


class _Combiner(beam.CombineFn):
    """Reads each example's (label, prediction, weight) as multi-hot vectors."""

    def __init__(self, key, eval_config, example_weighted: bool) -> None:
        self._key = key
        self._eval_config = eval_config
        self._example_weighted = example_weighted

    def _scores(self, element):
        """(true tags, scores, weight) of each example in element."""
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._key.model_name,
            output_name=self._key.output_name,
            example_weighted=self._example_weighted,
            flatten=False,
        ):
            truth = np.asarray(label).reshape(-1) >= 0.5
            yield truth, np.asarray(prediction).reshape(-1), metric_util.safe_to_scalar(weight)


class _ThresholdCombiner(_Combiner):
    """Reads each example's tags as decided at one threshold."""

    def __init__(self, key, eval_config, threshold: float, example_weighted: bool) -> None:
        super().__init__(key, eval_config, example_weighted)
        self._threshold = threshold

    def _examples(self, element):
        """(true tags, predicted tags, weight) of each example in element."""
        for truth, scores, weight in self._scores(element):
            # As TFMA's confusion matrices count it: above the threshold is a positive.
            yield truth, scores > self._threshold, weight


class SubsetAccuracy(metric_types.Metric):
    """Fraction of examples whose predicted tag set equals the true tag set."""

    def __init__(self, name: str = EXACT_MATCH_NAME, threshold: float = 0.5) -> None:
        super().__init__(
            metric_util.merge_per_key_computations(_computations(_SubsetAccuracyCombiner)),
            name=name,
            threshold=threshold,
        )


class _SubsetAccuracyCombiner(_ThresholdCombiner):
    def create_accumulator(self) -> list[float]:
        return [0.0, 0.0]  # weighted matches, weighted examples

    def add_input(self, accumulator: list[float], element) -> list[float]:
        for truth, predicted, weight in self._examples(element):
            accumulator[0] += weight * np.array_equal(truth, predicted)
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


class PerTagMetrics(metric_types.Metric):
    """Precision, recall, F1 and mean label of each tag."""

    def __init__(self, name: str = PER_TAG_NAME, threshold: float = 0.5) -> None:
        super().__init__(
            metric_util.merge_per_key_computations(_computations(_PerTagCombiner)),
            name=name,
            threshold=threshold,
        )


class _PerTagCombiner(_ThresholdCombiner):
    """Accumulates weighted [true positives, false positives, false negatives, labels]
    per tag, and the total weight."""

    def create_accumulator(self) -> list:
        return [None, 0.0]  # counts [4, tags] once the first example shows the width

    def add_input(self, accumulator: list, element) -> list:
        for truth, predicted, weight in self._examples(element):
            counts = np.stack([truth & predicted, ~truth & predicted, truth & ~predicted, truth])
            counts = counts.astype(np.float64) * weight
            accumulator[0] = counts if accumulator[0] is None else accumulator[0] + counts
            accumulator[1] += weight
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list]) -> list:
        total = [None, 0.0]
        for counts, weight in accumulators:
            if counts is not None:
                total[0] = counts if total[0] is None else total[0] + counts
            total[1] += weight
        return total

    def extract_output(self, accumulator: list) -> dict:
        counts, examples = accumulator
        if counts is None:
            return {}
        tp, fp, fn, labels = counts
        with np.errstate(divide="ignore", invalid="ignore"):
            values = {
                "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
                "recall": np.where(tp + fn > 0, tp / (tp + fn), 0.0),
                "f1_score": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
                "mean_label": labels / examples,
            }
        return {
            self._key._replace(name=metric, sub_key=metric_types.SubKey(class_id=tag)): float(
                values[metric][tag]
            )
            for metric in PER_TAG_METRICS
            for tag in range(len(tp))
        }


def _micro_computations(result):
    """A create_computations_fn for merge_per_key_computations, per model and output: the
    confusion matrices of every (example, tag) pair at the metric's thresholds, and the
    metric's value, result(matrices). Metrics at the same thresholds share one count:
    TFMA runs computations with equal keys once."""

    def computations(
        name: str,
        threshold: float | None,
        num_thresholds: int | None,
        eval_config=None,
        model_name: str = "",
        output_name: str = "",
        aggregation_type: metric_types.AggregationType | None = None,
        example_weighted: bool = False,
        **_unused,
    ) -> metric_types.MetricComputations:
        if aggregation_type is None or not aggregation_type.micro_average:
            raise ValueError(f"{name}: belongs in a MetricsSpec aggregated by micro_average")

        def key(name: str) -> metric_types.MetricKey:
            return metric_types.MetricKey(
                name=name,
                model_name=model_name,
                output_name=output_name,
                aggregation_type=aggregation_type,
                example_weighted=example_weighted,
            )

        if threshold is not None:
            thresholds = [threshold]
        else:
            thresholds = binary_confusion_matrices._interpolated_thresholds(num_thresholds)
        matrices = key(
            metric_util.generate_private_name_from_arguments(
                MICRO_MATRICES_NAME, threshold=threshold, num_thresholds=num_thresholds
            )
        )
        value = key(name)
        combiner = _MicroCombiner(matrices, eval_config, thresholds, example_weighted)
        return [
            metric_types.MetricComputation(keys=[matrices], preprocessors=None, combiner=combiner),
            metric_types.DerivedMetricComputation(
                keys=[value], result=lambda results: {value: float(result(results[matrices]))}
            ),
        ]

    return computations


class _MicroCombiner(_Combiner):
    """Weighted counts of negative and positive (example, tag) pairs by score bucket:
    bucket b holds the scores above thresholds[b - 1] and at most thresholds[b], so the
    positives at threshold i (scores above it) are the pairs in buckets i + 1 and up."""

    def __init__(self, key, eval_config, thresholds: list[float], example_weighted: bool) -> None:
        super().__init__(key, eval_config, example_weighted)
        self._thresholds = np.asarray(thresholds, dtype=np.float64)

    def create_accumulator(self) -> np.ndarray:
        return np.zeros((2, len(self._thresholds) + 1))

    def add_input(self, accumulator: np.ndarray, element) -> np.ndarray:
        width = len(self._thresholds) + 1
        for truth, scores, weight in self._scores(element):
            buckets = np.searchsorted(self._thresholds, scores, side="left")
            accumulator[0] += weight * np.bincount(buckets[~truth], minlength=width)
            accumulator[1] += weight * np.bincount(buckets[truth], minlength=width)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return sum(accumulators, self.create_accumulator())

    def extract_output(self, accumulator: np.ndarray) -> dict:
        above = np.cumsum(accumulator[:, ::-1], axis=1)[:, ::-1][:, 1:]  # [2, thresholds]
        negatives, positives = accumulator.sum(axis=1)
        fp, tp = above
        matrices = binary_confusion_matrices.Matrices(
            thresholds=list(self._thresholds),
            tp=list(tp),
            tn=list(negatives - fp),
            fp=list(fp),
            fn=list(positives - tp),
        )
        return {self._key: matrices}


class _MicroMetric(metric_types.Metric):
    """A micro-averaged metric: result(matrices) at one threshold, or at num_thresholds
    thresholds spaced as TFMA spaces them."""

    def __init__(
        self, name: str, result, threshold: float | None = None, num_thresholds: int | None = None
    ) -> None:
        super().__init__(
            metric_util.merge_per_key_computations(_micro_computations(result)),
            name=name,
            threshold=threshold,
            num_thresholds=num_thresholds,
        )


def _at_threshold(tfma_metric):
    """result(matrices) of a TFMA confusion-matrix metric at the one threshold."""
    return lambda m: tfma_metric.result(m.tp[0], m.tn[0], m.fp[0], m.fn[0])


def _area(curve: str):
    """result(matrices): TFMA's AUC over the curve ("ROC" or "PR"), interpolated as TFMA's
    AUC and AUCPrecisionRecall are by default."""
    auc = confusion_matrix_metrics.AUC()
    return lambda m: auc._metric_value(curve, "interpolation", None, m)


class MicroPrecision(_MicroMetric):
    def __init__(self, name: str = "precision", threshold: float = 0.5) -> None:
        super().__init__(name, _at_threshold(confusion_matrix_metrics.Precision()), threshold)


class MicroRecall(_MicroMetric):
    def __init__(self, name: str = "recall", threshold: float = 0.5) -> None:
        super().__init__(name, _at_threshold(confusion_matrix_metrics.Recall()), threshold)


class MicroF1Score(_MicroMetric):
    def __init__(self, name: str = "f1_score", threshold: float = 0.5) -> None:
        super().__init__(name, _at_threshold(confusion_matrix_metrics.F1Score()), threshold)


class MicroAUC(_MicroMetric):
    def __init__(self, name: str = "auc", num_thresholds: int = 2000) -> None:
        super().__init__(name, _area("ROC"), num_thresholds=num_thresholds)


class MicroAUCPrecisionRecall(_MicroMetric):
    def __init__(self, name: str = "auc_precision_recall", num_thresholds: int = 2000) -> None:
        super().__init__(name, _area("PR"), num_thresholds=num_thresholds)


for _metric in (
    SubsetAccuracy,
    PerTagMetrics,
    MicroPrecision,
    MicroRecall,
    MicroF1Score,
    MicroAUC,
    MicroAUCPrecisionRecall,
):
    metric_types.register_metric(_metric)
