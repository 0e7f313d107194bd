"""The decision rule shipped with the model: one global score threshold per model."""

from __future__ import annotations

import numpy as np

CANDIDATES = np.round(np.arange(0.05, 0.951, 0.01), 2)


def micro_f1(labels: np.ndarray, decisions: np.ndarray) -> float:
    tp = float(np.logical_and(labels == 1, decisions).sum())
    predicted = float(decisions.sum())
    actual = float((labels == 1).sum())
    return 2 * tp / (predicted + actual) if predicted + actual else 0.0


def choose(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The candidate threshold with the best micro F1 on (labels, scores); ties go low."""
    best = max(CANDIDATES, key=lambda t: (micro_f1(labels, scores >= t), -t))
    return float(best), micro_f1(labels, scores >= best)
