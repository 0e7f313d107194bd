"""The decision rule shipped with the model: one global score threshold, and at least one
tag per title (its top-scoring tag when none clears the threshold).

Every title has at least one true tag, so a title with no predicted tag can never be an
exact match. The rule is written once, in TensorFlow ops: the serving signature returns
its result as `predicted`, and the Trainer (choosing the threshold) and the quality
bench (deciding for the baselines) call the same function eagerly on arrays.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

CANDIDATES = np.round(np.arange(0.05, 0.951, 0.01), 2)


def decide(scores, threshold, named=None) -> tf.Tensor:
    """bool [batch, tags]: scores at or above threshold, plus each row's top tag.

    named: bool [tags], False for columns that are no tag (padding past the vocabulary);
    those are never predicted.
    """
    scores = tf.convert_to_tensor(scores, tf.float32)
    if named is None:
        named = tf.ones(tf.shape(scores)[-1:], tf.bool)
    named = tf.convert_to_tensor(named, tf.bool)[tf.newaxis, :]
    masked = tf.where(named, scores, -np.inf)
    top = tf.equal(masked, tf.reduce_max(masked, axis=1, keepdims=True))
    return named & ((scores >= tf.cast(threshold, tf.float32)) | top)


def micro_f1(labels: np.ndarray, decisions: np.ndarray) -> float:
    tp = float(np.logical_and(labels == 1, decisions).sum())
    predicted = float(decisions.sum())
    actual = float((labels == 1).sum())
    return 2 * tp / (predicted + actual) if predicted + actual else 0.0


def choose(labels: np.ndarray, scores: np.ndarray, named=None) -> tuple[float, float]:
    """The candidate threshold whose decisions have the best micro F1; ties go low."""
    f1 = {float(t): micro_f1(labels, decide(scores, t, named).numpy()) for t in CANDIDATES}
    best = max(f1, key=lambda t: (f1[t], -t))
    return best, f1[best]
