"""The Keras network: wide and deep over the title's TF-IDF vectors, one sigmoid per tag.

The wide part is the strong linear model of the baselines (bench/quality.py): word and
character n-gram TF-IDF -> logits. The deep part (one hidden layer over the word terms)
adds term interactions. Their logits are summed. The character n-grams stay out of the
deep part: a [CHAR_SPACE, hidden] kernel would more than double training time.
"""

from __future__ import annotations

import tensorflow as tf

from modules import features
from modules.preprocessing import CHAR_SPACE, TERM_SPACE

# Which axis of which weight is indexed by which Transform vocabulary: warm starting
# (modules/warm_start.py) carries these rows and columns over by term and tag name.
VOCAB_AXES = {
    "wide/kernel": {0: features.TERM_VOCAB, 1: features.TAG_VOCAB},
    "wide/bias": {0: features.TAG_VOCAB},
    "wide_chars/kernel": {0: features.CHAR_VOCAB, 1: features.TAG_VOCAB},
    "wide_chars/bias": {0: features.TAG_VOCAB},
    "tfidf_dense/kernel": {0: features.TERM_VOCAB},
    "deep/kernel": {1: features.TAG_VOCAB},
    "deep/bias": {0: features.TAG_VOCAB},
}


# The network's hyperparameters: build()'s arguments, searched by the Tuner.
HYPERPARAMETERS = (
    "hidden_units", "dropout", "learning_rate", "depth", "char_grams", "wide_step_scale",
)  # fmt: skip


class TfidfVector(tf.keras.layers.Layer):
    """Dense layer applied to a sparse TF-IDF vector of width `space`, given as (ids, weights).

    Multiplying the sparse vector directly avoids materialising [batch, space].

    step_scale: the output is (vector @ kernel + bias) * step_scale, with the weights
    initialised step_scale times smaller. The function is the same; what changes is
    training: Adam's steps have the same size whatever the gradient's scale, so the
    layer learns step_scale times faster than the rest of the network. The wide linear
    part needs that to reach, in a few epochs, the large weights a linear solver finds
    for rare tags. It is a weight of its own ("scale"), so a warm start carries it over
    with the kernel it belongs to.
    """

    def __init__(
        self, units: int, space: int = TERM_SPACE, step_scale: float = 1.0, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.units, self.space, self.step_scale = units, space, step_scale

    def build(self, input_shape) -> None:
        glorot = tf.keras.initializers.GlorotUniform()
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.space, self.units),
            initializer=lambda shape, dtype=None: glorot(shape, dtype) / self.step_scale,
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.scale = self.add_weight(
            name="scale",
            shape=(),
            initializer=tf.keras.initializers.Constant(self.step_scale),
            trainable=False,
        )

    def call(self, inputs):
        ids, weights = inputs
        vector = tf.SparseTensor(
            indices=tf.stack([ids.indices[:, 0], ids.values], axis=1),
            values=weights.values,
            dense_shape=tf.stack([ids.dense_shape[0], self.space]),
        )
        return (tf.sparse.sparse_dense_matmul(vector, self.kernel) + self.bias) * self.scale

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "space": self.space,
            "step_scale": self.step_scale,
        }


def build(
    hidden_units: int,
    dropout: float,
    learning_rate: float,
    depth: int = 1,
    char_grams: bool = True,
    wide_step_scale: float = 1.0,
    embedding_width: int = 0,
) -> tf.keras.Model:
    """The tagger network. Inputs are features.MODEL_INPUTS, in that order, as sparse
    [batch, None] tensors (the char n-grams are ignored when char_grams is False).

    depth: hidden layers in the deep part, each hidden_units wide.
    wide_step_scale: how much faster the wide part learns (TfidfVector's step_scale).
    embedding_width: > 0 adds a last input, a dense sentence embedding of that width,
    feeding the first hidden layer and a linear head of its own (bench/encoder.py's
    experiment; the pipeline does not use it).
    """
    ids, weights, char_ids, char_weights = (
        tf.keras.Input(shape=(None,), sparse=True, dtype=dtype, name=name)
        for name, dtype in zip(features.MODEL_INPUTS, (tf.int64, tf.float32) * 2, strict=True)
    )
    wide = TfidfVector(features.NUM_TAGS, step_scale=wide_step_scale, name="wide")([ids, weights])
    if char_grams:
        chars = TfidfVector(
            features.NUM_TAGS, CHAR_SPACE, step_scale=wide_step_scale, name="wide_chars"
        )
        wide = tf.keras.layers.Add()([wide, chars([char_ids, char_weights])])
    x = TfidfVector(hidden_units, name="tfidf_dense")([ids, weights])
    inputs = [ids, weights, char_ids, char_weights]
    if embedding_width:
        embedding = tf.keras.Input(shape=(embedding_width,), name="embedding")
        inputs.append(embedding)
        project = tf.keras.layers.Dense(hidden_units, name="embedding_dense")
        x = tf.keras.layers.Add()([x, project(embedding)])
        head = tf.keras.layers.Dense(features.NUM_TAGS, name="embedding_wide")
        wide = tf.keras.layers.Add()([wide, head(embedding)])
    for layer in range(depth):
        if layer:
            x = tf.keras.layers.Dense(hidden_units, name=f"hidden_{layer + 1}")(x)
        x = tf.keras.layers.Activation("relu")(x)
        x = tf.keras.layers.Dropout(dropout)(x)
    deep = tf.keras.layers.Dense(features.NUM_TAGS, name="deep")(x)
    logits = tf.keras.layers.Add()([wide, deep])
    scores = tf.keras.layers.Activation("sigmoid", name="scores")(logits)
    model = tf.keras.Model(inputs=inputs, outputs=scores)
    model.compile(
        # The legacy Adam applies each update with one fused kernel: on the wide sparse
        # kernels a training step is 2-4x faster than with Keras' newer Adam, same rule.
        optimizer=tf.keras.optimizers.legacy.Adam(learning_rate),
        loss=tf.keras.losses.BinaryCrossentropy(),
        metrics=[tf.keras.metrics.AUC(multi_label=False, name="auc")],
    )
    return model
