"""The Keras network: wide and deep over the title's TF-IDF vector, one sigmoid per tag.

The wide part is the seed's strong linear model (TF-IDF -> logits); the deep part (one
hidden layer) adds term interactions. Their logits are summed.
"""

from __future__ import annotations

import tensorflow as tf

from modules import features
from modules.preprocessing import TERM_SPACE


class TfidfVector(tf.keras.layers.Layer):
    """Dense layer applied to the sparse TF-IDF vector given as (ids, weights).

    Multiplying the sparse vector directly avoids materialising [batch, TERM_SPACE].
    """

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape) -> None:
        self.kernel = self.add_weight(
            name="kernel", shape=(TERM_SPACE, self.units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        ids, weights = inputs
        vector = tf.SparseTensor(
            indices=tf.stack([ids.indices[:, 0], ids.values], axis=1),
            values=weights.values,
            dense_shape=tf.stack([ids.dense_shape[0], TERM_SPACE]),
        )
        return tf.sparse.sparse_dense_matmul(vector, self.kernel) + self.bias

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


def build(hidden_units: int, dropout: float, learning_rate: float) -> tf.keras.Model:
    ids = tf.keras.Input(shape=(None,), sparse=True, dtype=tf.int64, name=features.TERM_IDS)
    weights = tf.keras.Input(
        shape=(None,), sparse=True, dtype=tf.float32, name=features.TERM_WEIGHTS
    )
    wide = TfidfVector(features.NUM_TAGS, name="wide")([ids, weights])
    x = TfidfVector(hidden_units, name="tfidf_dense")([ids, weights])
    x = tf.keras.layers.Activation("relu")(x)
    x = tf.keras.layers.Dropout(dropout)(x)
    deep = tf.keras.layers.Dense(features.NUM_TAGS, name="deep")(x)
    logits = tf.keras.layers.Add()([wide, deep])
    scores = tf.keras.layers.Activation("sigmoid", name="scores")(logits)
    model = tf.keras.Model(inputs=[ids, weights], outputs=scores)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.BinaryCrossentropy(),
        metrics=[tf.keras.metrics.AUC(multi_label=False, name="auc")],
    )
    return model
