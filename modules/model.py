"""The Keras network: wide and deep over the title's TF-IDF vectors, two heads per tag.

The wide part is the strong linear model of the baselines (bench/quality.py): word and
character n-gram TF-IDF -> logits. The deep part (one hidden layer over the word terms)
adds term interactions. Their logits are summed. The character n-grams stay out of the
deep part: a [CHAR_SPACE, hidden] kernel would more than double training time.

Two heads share the hidden layer, each with its own wide part and output layer: one
trained with cross-entropy (probabilities: good rankings, AP and ROC AUC), one with the
hinge loss (a linear SVM's margins: good decisions, F1 and exact match). The network
outputs both heads' logits side by side; scores() blends them into the one score per tag
that the model serves and thresholds: each head alone is behind on one family of
metrics, and the blend matches or beats both (docs/model.md has the measurements).
After fit, the Trainer replaces the margin head by a linear SVM over the head's linear
inputs, solved to its optimum (modules/linear_svm.py, trainer.TRAINING["margin_svm_c"]):
the hinge training above then shapes only the shared hidden layer.

Each head's wide parts can carry an L2 penalty, the regularizer of the baselines' linear
models (margin_wide_l2 ~ a linear SVM's 1 / (2 C N NUM_TAGS) for N training titles).
Early stopping alone leaves the rare tags' wide weights as large as a few epochs made
them; the penalty shrinks them, which orders each tag's titles better (AP).
Whether it pays depends on the inputs, so each setting's reviewed hyperparameters file
says whether it is on. Since the SVM replaces the trained margin head, margin_wide_l2
acts only through what the hinge training does to the shared hidden layer.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

from contract import features
from modules.preprocessing import CHAR_SPACE, TERM_SPACE

# The heads, in the order of the network's output: cross-entropy, then hinge.
HEADS = ("probability", "margin")
# scores() = PROBABILITY_WEIGHT * sigmoid(probability logit)
#          + (1 - PROBABILITY_WEIGHT) * sigmoid(MARGIN_SCALE * margin),
# chosen by micro F1 on the eval split (docs/model.md has the grid).
# MARGIN_SCALE makes the margin's sigmoid nearly a step at 0, where the hinge head
# decides; the probability head then orders the tags on either side of it.
PROBABILITY_WEIGHT = 0.2
MARGIN_SCALE = 8.0


def _head_axes(head: str) -> dict:
    return {
        f"{head}_wide/kernel": {0: features.TERM_VOCAB, 1: features.TAG_VOCAB},
        f"{head}_wide/bias": {0: features.TAG_VOCAB},
        f"{head}_wide_chars/kernel": {0: features.CHAR_VOCAB, 1: features.TAG_VOCAB},
        f"{head}_wide_chars/bias": {0: features.TAG_VOCAB},
        f"{head}_deep/kernel": {1: features.TAG_VOCAB},
        f"{head}_deep/bias": {0: features.TAG_VOCAB},
        f"{head}_embedding/kernel": {1: features.TAG_VOCAB},
        f"{head}_embedding/bias": {0: features.TAG_VOCAB},
    }


# Which axis of which weight is indexed by which Transform vocabulary: warm starting
# (modules/warm_start.py) carries these rows and columns over by term and tag name.
VOCAB_AXES = {
    "tfidf_dense/kernel": {0: features.TERM_VOCAB},
    **{name: axes for head in HEADS for name, axes in _head_axes(head).items()},
}


# The network's hyperparameters: build()'s arguments, searched by the Tuner.
HYPERPARAMETERS = (
    "hidden_units",
    "dropout",
    "learning_rate",
    "depth",
    "char_grams",
    "wide_step_scale",
    "probability_wide_l2",
    "margin_wide_l2",
)


class TfidfVector(tf.keras.layers.Layer):
    """Dense layer applied to a sparse TF-IDF vector of width `space`, given as (ids, weights).

    Only the kernel's rows of the terms present are read; nothing [batch, space] is
    materialised.

    step_scale: the output is (vector @ kernel + bias) * step_scale, with the weights
    initialised step_scale times smaller. The function is the same; what changes is
    training: Adam's steps have the same size whatever the gradient's scale, so the
    layer learns step_scale times faster than the rest of the network. The wide linear
    part needs that to reach, in a few epochs, the large weights a linear solver finds
    for rare tags. It is a weight of its own ("scale"), so a warm start carries it over
    with the kernel it belongs to.

    l2: L2 penalty on the weights as they act, kernel * step_scale (a training loss).
    """

    def __init__(
        self,
        units: int,
        space: int = TERM_SPACE,
        step_scale: float = 1.0,
        l2: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.units, self.space, self.step_scale, self.l2 = units, space, step_scale, l2
        # While idle the layer outputs zeros and computes nothing (margin_wide_idle()).
        self.idle = False

    def build(self, input_shape) -> None:
        glorot = tf.keras.initializers.GlorotUniform()
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.space, self.units),
            initializer=lambda shape, dtype=None: glorot(shape, dtype) / self.step_scale,
            regularizer=tf.keras.regularizers.L2(self.l2 * self.step_scale**2) if self.l2 else None,
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
        if self.idle:
            shape = tf.stack([ids.dense_shape[0], tf.constant(self.units, tf.int64)])
            return tf.zeros(shape, self.compute_dtype)
        # Only the kernel's rows of the terms present, each once, enter the product: the
        # kernel's gradient is then an IndexedSlices of those rows, which LazyAdam updates
        # alone, and no larger than the batch's distinct terms.
        present, position = tf.unique(ids.values, out_idx=tf.int64)
        vector = tf.SparseTensor(
            indices=tf.stack([ids.indices[:, 0], position], axis=1),
            values=weights.values,
            dense_shape=tf.stack([ids.dense_shape[0], tf.size(present, out_type=tf.int64)]),
        )
        rows = tf.sparse.sparse_dense_matmul(vector, tf.gather(self.kernel, present))
        return (rows + self.bias) * self.scale

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "space": self.space,
            "step_scale": self.step_scale,
            "l2": self.l2,
        }


def build(
    *,
    hidden_units: int,
    dropout: float,
    learning_rate: float,
    depth: int,
    char_grams: bool,
    wide_step_scale: float,
    probability_wide_l2: float,
    margin_wide_l2: float,
    embedding_width: int = 0,
) -> tf.keras.Model:
    """The tagger network. Its hyperparameters (HYPERPARAMETERS) have no defaults here:
    their values live in the reviewed file of each setting
    (hyperparameters/<setting>/best_hyperparameters.txt) or come from the Tuner.

    Inputs are features.MODEL_INPUTS, in that order, as sparse [batch, None] tensors (the char
    n-grams are ignored when char_grams is False), then, when embedding_width > 0,
    features.EMBEDDING: a dense sentence embedding of that width (modules/encoder.py),
    feeding the hidden layer and a linear part of each head.
    Output: both heads' logits, [batch, 2 * NUM_TAGS]; scores() turns them into scores.

    depth: hidden layers in the deep part, each hidden_units wide.
    wide_step_scale: how much faster the wide parts learn (TfidfVector's step_scale).
    probability_wide_l2, margin_wide_l2: each head's L2 penalty on its wide parts (top).
    """
    ids, weights, char_ids, char_weights = (
        tf.keras.Input(shape=(None,), sparse=True, dtype=dtype, name=name)
        for name, dtype in zip(features.MODEL_INPUTS, (tf.int64, tf.float32) * 2, strict=True)
    )
    inputs = [ids, weights, char_ids, char_weights]
    x = TfidfVector(hidden_units, name="tfidf_dense")([ids, weights])
    if embedding_width:
        embedding = tf.keras.Input(shape=(embedding_width,), name=features.EMBEDDING)
        inputs.append(embedding)
        project = tf.keras.layers.Dense(hidden_units, name="embedding_dense")
        x = tf.keras.layers.Add()([x, project(embedding)])
    for layer in range(depth):
        if layer:
            x = tf.keras.layers.Dense(hidden_units, name=f"hidden_{layer + 1}")(x)
        x = tf.keras.layers.Activation("relu")(x)
        x = tf.keras.layers.Dropout(dropout)(x)

    def head(name: str, l2: float) -> tf.Tensor:
        wide = TfidfVector(
            features.NUM_TAGS, step_scale=wide_step_scale, l2=l2, name=f"{name}_wide"
        )
        parts = [wide([ids, weights])]
        if char_grams:
            chars = TfidfVector(
                features.NUM_TAGS,
                CHAR_SPACE,
                step_scale=wide_step_scale,
                l2=l2,
                name=f"{name}_wide_chars",
            )
            parts.append(chars([char_ids, char_weights]))
        parts.append(tf.keras.layers.Dense(features.NUM_TAGS, name=f"{name}_deep")(x))
        if embedding_width:
            linear = tf.keras.layers.Dense(features.NUM_TAGS, name=f"{name}_embedding")
            parts.append(linear(embedding))
        return tf.keras.layers.Add(name=f"{name}_logits")(parts)

    heads = zip(HEADS, (probability_wide_l2, margin_wide_l2), strict=True)
    logits = tf.keras.layers.Concatenate(name="logits")([head(*h) for h in heads])
    model = tf.keras.Model(inputs=inputs, outputs=logits)
    model.compile(optimizer=LazyAdam(learning_rate), loss=loss)
    return model


class LazyAdam(tf.keras.optimizers.legacy.Adam):
    """Adam that updates, for a sparse gradient, only the rows it touches.

    A batch of titles uses a small part of the TF-IDF kernels' rows (TERM_SPACE words,
    CHAR_SPACE character n-grams). Adam proper decays every row's moments at every step;
    this one moves a row's moments and weights only at the steps whose batch holds its
    term, as TensorFlow Addons' LazyAdam does. For dense gradients it is Adam. (The
    legacy Adam, unlike Keras' newer one, applies a dense update with one fused kernel.)
    """

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        # Keras has summed the gradient's duplicate indices before this is called.
        device, dtype = var.device, var.dtype.base_dtype
        coefficients = (apply_state or {}).get((device, dtype)) or self._fallback_apply_state(
            device, dtype
        )
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        m_rows = coefficients["beta_1_t"] * tf.gather(m, indices)
        m_rows += coefficients["one_minus_beta_1_t"] * grad
        v_rows = coefficients["beta_2_t"] * tf.gather(v, indices)
        v_rows += coefficients["one_minus_beta_2_t"] * tf.square(grad)
        # coefficients["lr"] carries Adam's bias correction.
        step = coefficients["lr"] * m_rows / (tf.sqrt(v_rows) + coefficients["epsilon"])
        return tf.group(
            m.scatter_update(tf.IndexedSlices(m_rows, indices)),
            v.scatter_update(tf.IndexedSlices(v_rows, indices)),
            var.scatter_sub(tf.IndexedSlices(step, indices)),
        )


@contextlib.contextmanager
def margin_wide_idle(net: tf.keras.Model):
    """Within: the margin head's wide parts output zeros and neither compute nor train.

    For training a network whose margin head is replaced afterwards
    (modules/linear_svm.py): the SVM sets those parts, so computing them during fit
    only costs time. The hinge loss still shapes the shared hidden layer through the
    head's deep part (docs/model.md measures both ways).
    """
    layers = [layer for layer in net.layers if layer.name.startswith(f"{HEADS[1]}_wide")]
    for layer in layers:
        layer.idle, layer.trainable = True, False
    _forget_traced_functions(net)
    try:
        yield net
    finally:
        for layer in layers:
            layer.idle, layer.trainable = False, True
        _forget_traced_functions(net)


def _forget_traced_functions(net: tf.keras.Model) -> None:
    # Keras keeps the functions fit, evaluate and predict traced; the next call must
    # trace them again to see the layers' idle setting.
    net.train_function = net.test_function = net.predict_function = None


def loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Cross-entropy on the probability head plus the hinge loss on the margin head."""
    probability, margin = tf.split(logits, len(HEADS), axis=-1)
    cross_entropy = tf.keras.losses.binary_crossentropy(labels, probability, from_logits=True)
    return cross_entropy + tf.keras.losses.hinge(labels, margin)


def scores(logits: tf.Tensor) -> tf.Tensor:
    """[batch, NUM_TAGS] scores in [0, 1] from the network's output (see the top)."""
    probability, margin = tf.split(logits, len(HEADS), axis=-1)
    return PROBABILITY_WEIGHT * tf.sigmoid(probability) + (1 - PROBABILITY_WEIGHT) * tf.sigmoid(
        MARGIN_SCALE * margin
    )
