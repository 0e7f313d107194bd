"""Custom Keras metrics that TFMA loads by module path (see pipeline/eval_config.py)."""

from __future__ import annotations

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tagger")
class ExactMatch(tf.keras.metrics.Mean):
    """Fraction of titles whose predicted tag set equals the true tag set.

    TFMA feeds the model's decision-centred scores, so 0.5 is the model's own threshold.
    """

    def __init__(self, name: str = "exact_match", threshold: float = 0.5, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        decisions = tf.cast(y_pred >= self.threshold, tf.float32)
        truth = tf.cast(y_true >= 0.5, tf.float32)
        match = tf.reduce_all(tf.equal(decisions, truth), axis=-1)
        return super().update_state(tf.cast(match, tf.float32), sample_weight=None)

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}
