"""Windows against the training spans (skew) and against the window before (drift), with
TFDV's comparators, and a text-domain check.

TFDV measures L-infinity distance for categorical features and approximate Jensen-Shannon
divergence for numeric ones; `validate_statistics` reports each measurement in
`drift_skew_info` whether or not it is above the threshold the schema sets. The domain
check trains a classifier to tell a window's titles from training titles (character
n-gram TF-IDF and logistic regression, five folds): its ROC AUC is 0.5 when it cannot.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow_data_validation as tfdv
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from monitoring.features import CATEGORICAL, NUMERIC

COMPARED = NUMERIC + CATEGORICAL
SKEW, DRIFT = "skew", "drift"


@dataclasses.dataclass
class Thresholds:
    """Above these a window counts as shifted; calibrated by monitoring/calibrate.py."""

    skew: dict[str, float]
    drift: dict[str, float]
    domain_auc: float
    window_requests: int  # the window size they hold for: smaller ones are not judged

    @classmethod
    def load(cls, path: Path) -> Thresholds:
        found = json.loads(path.read_text())
        return cls(found["skew"], found["drift"], found["domain_auc"], found["window_requests"])

    @classmethod
    def report_all(cls) -> Thresholds:
        """Thresholds nothing exceeds: every distance is measured and none flagged."""
        return cls(dict.fromkeys(COMPARED, 1.0), dict.fromkeys(COMPARED, 1.0), 1.0, 0)


def statistics(frame: pd.DataFrame) -> statistics_pb2.DatasetFeatureStatisticsList:
    return tfdv.generate_statistics_from_dataframe(frame)


def schema(
    baseline: statistics_pb2.DatasetFeatureStatisticsList, thresholds: Thresholds
) -> schema_pb2.Schema:
    inferred = tfdv.infer_schema(baseline)
    for name in COMPARED:
        feature = tfdv.get_feature(inferred, name)
        for comparator, limits in (
            (feature.skew_comparator, thresholds.skew),
            (feature.drift_comparator, thresholds.drift),
        ):
            if name in CATEGORICAL:
                comparator.infinity_norm.threshold = limits[name]
            else:
                comparator.jensen_shannon_divergence.threshold = limits[name]
    return inferred


def _measured(anomalies, kind: str) -> dict[str, float]:
    found = {}
    for info in anomalies.drift_skew_info:
        measurements = info.skew_measurements if kind == SKEW else info.drift_measurements
        for m in measurements:
            found[info.path.step[0]] = float(m.value)
    return found


def skew(baseline, window, schema_: schema_pb2.Schema) -> dict[str, float]:
    return _measured(tfdv.validate_statistics(baseline, schema_, serving_statistics=window), SKEW)


def drift(previous, window, schema_: schema_pb2.Schema) -> dict[str, float]:
    return _measured(tfdv.validate_statistics(window, schema_, previous_statistics=previous), DRIFT)


def domain_auc(titles: list[str], training_titles: list[str], seed: int = 0) -> float:
    """How well a classifier tells these titles from as many training titles."""
    rng = np.random.default_rng(seed)
    n = min(len(titles), len(training_titles))
    reference = [training_titles[i] for i in rng.choice(len(training_titles), n, replace=False)]
    sample = [titles[i] for i in rng.choice(len(titles), n, replace=False)]
    labels = np.array([0] * n + [1] * n)
    classifier = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True),
        LogisticRegression(C=1.0, max_iter=1000),
    )
    scores = cross_val_predict(
        classifier, reference + sample, labels, cv=5, method="predict_proba"
    )[:, 1]
    return float(roc_auc_score(labels, scores))


def above(measured: dict, thresholds: Thresholds) -> list[str]:
    """What in a window's measurements is over its threshold, as "kind:feature"."""
    found = [f"{SKEW}:{f}" for f, v in measured[SKEW].items() if v > thresholds.skew[f]]
    found += [f"{DRIFT}:{f}" for f, v in measured[DRIFT].items() if v > thresholds.drift[f]]
    if measured["domain_auc"] > thresholds.domain_auc:
        found.append("domain_auc")
    return found
