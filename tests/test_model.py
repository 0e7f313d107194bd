"""The network's two heads: what each one is trained on, and how the model scores."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from contract import features
from modules import model
from tests.hyperparameters import network

SMALL = network(hidden_units=8, dropout=0.0, learning_rate=1e-3, wide_step_scale=1.0)


def logits(probability: list[float], margin: list[float]) -> tf.Tensor:
    return tf.constant([probability + margin], tf.float32)


def test_the_probability_head_gets_cross_entropy_and_the_margin_head_the_hinge_loss():
    labels = tf.constant([[1.0, 0.0]])
    got = float(model.loss(labels, logits([2.0, -1.0], [0.5, 0.2]))[0])
    sigmoid = 1 / (1 + np.exp(-np.array([2.0, -1.0])))
    cross_entropy = -np.mean([np.log(sigmoid[0]), np.log(1 - sigmoid[1])])
    hinge = np.mean([max(0.0, 1 - 0.5), max(0.0, 1 + 0.2)])  # labels as +1 / -1
    assert np.isclose(got, cross_entropy + hinge, rtol=1e-5)


def test_scores_are_in_0_1_and_rise_with_either_head():
    base = float(model.scores(logits([0.0], [0.0]))[0, 0])
    assert 0 < base < 1
    assert float(model.scores(logits([1.0], [0.0]))[0, 0]) > base
    assert float(model.scores(logits([0.0], [0.1]))[0, 0]) > base
    extremes = model.scores(logits([-50.0, 50.0], [-50.0, 50.0])).numpy()
    np.testing.assert_allclose(extremes, [[0.0, 1.0]], atol=1e-6)


def test_the_network_outputs_both_heads_for_every_tag():
    net = model.build(**SMALL)
    ids = tf.sparse.from_dense(tf.constant([[1, 2]], tf.int64))
    weights = tf.sparse.from_dense(tf.constant([[0.5, 0.5]]))
    out = net([ids, weights, ids, weights])
    assert out.shape == (1, len(model.HEADS) * features.NUM_TAGS)
    assert net.get_layer("logits").input[0].name.startswith(model.HEADS[0])


def test_each_heads_l2_penalises_its_own_wide_weights_as_they_act():
    net = model.build(
        **network(
            hidden_units=8,
            dropout=0.0,
            learning_rate=1e-3,
            wide_step_scale=10.0,
            margin_wide_l2=1e-3,
        )
    )
    # The kernels are stored step_scale times smaller: the penalty is on kernel * scale.
    expected = sum(
        1e-3 * float(tf.reduce_sum(tf.square(layer.kernel * layer.scale)))
        for layer in (net.get_layer(f"margin_{part}") for part in ("wide", "wide_chars"))
    )
    assert len(net.losses) == 2
    assert np.isclose(float(tf.add_n(net.losses)), expected, rtol=1e-4)
    assert not model.build(**SMALL).losses  # both penalties 0 in the reviewed values


def test_the_penalty_makes_the_fitted_wide_weights_smaller():
    ids = tf.sparse.from_dense(tf.constant([[1, 2], [3, 4]], tf.int64))
    weights = tf.sparse.from_dense(tf.constant([[0.5, 0.5], [0.7, 0.7]]))
    labels = np.zeros((2, features.NUM_TAGS), np.float32)
    labels[0, 0] = labels[1, 1] = 1

    def fitted_norm(l2: float) -> float:
        tf.keras.utils.set_random_seed(0)
        net = model.build(
            **network(
                hidden_units=8,
                dropout=0.0,
                learning_rate=1e-2,
                wide_step_scale=1.0,
                probability_wide_l2=l2,
                margin_wide_l2=l2,
            )
        )
        net.fit([ids, weights, ids, weights], labels, epochs=30, verbose=0)
        wide = [net.get_layer(f"{head}_wide") for head in model.HEADS]
        return sum(float(tf.norm(layer.kernel * layer.scale)) for layer in wide)

    assert fitted_norm(1e-2) < 0.8 * fitted_norm(0.0)


def test_a_tfidf_layer_is_its_sparse_vector_times_the_kernel_plus_bias_scaled():
    layer = model.TfidfVector(3, space=6, step_scale=2.0)
    ids = tf.sparse.from_dense(tf.constant([[1, 4, 4], [5, 0, 0], [0, 0, 0]], tf.int64))
    weights = tf.sparse.from_dense(tf.constant([[0.5, 0.25, 0.25], [1.0, 0, 0], [0, 0, 0]]))
    layer([ids, weights])  # builds the weights
    kernel, bias = layer.kernel.numpy(), np.arange(3, dtype=np.float32)
    layer.bias.assign(bias)
    out = layer([ids, weights]).numpy()
    dense = np.zeros((3, 6), np.float32)
    dense[0, 1], dense[0, 4], dense[1, 5] = 0.5, 0.5, 1.0  # a repeated id adds up
    np.testing.assert_allclose(out, (dense @ kernel + bias) * 2.0, rtol=1e-5, atol=1e-6)
    assert np.allclose(out[2], bias * 2.0)  # a title without terms: the bias alone


def test_lazy_adam_moves_only_the_rows_a_sparse_gradient_touches_as_adam_would():
    lr, beta_1, beta_2, epsilon = 0.1, 0.9, 0.999, 1e-7
    var = tf.Variable(np.ones((5, 2), np.float32))
    optimizer = model.LazyAdam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    values = tf.constant([[1.0, -2.0], [3.0, 0.5], [1.0, 1.0]])
    # Row 3 twice: its gradient is the sum of both.
    optimizer.apply_gradients([(tf.IndexedSlices(values, tf.constant([1, 3, 3])), var)])
    grad = np.zeros((5, 2), np.float32)
    grad[1], grad[3] = [1.0, -2.0], [4.0, 1.5]
    m, v = (1 - beta_1) * grad, (1 - beta_2) * grad**2
    step = lr * np.sqrt(1 - beta_2) / (1 - beta_1) * m / (np.sqrt(v) + epsilon)
    np.testing.assert_allclose(var.numpy(), 1.0 - step, rtol=1e-5)
    for untouched in (0, 2, 4):
        assert (var.numpy()[untouched] == 1.0).all()
        assert (optimizer.get_slot(var, "m").numpy()[untouched] == 0).all()


def test_while_idle_the_margin_wide_parts_neither_count_nor_train():
    ids = tf.sparse.from_dense(tf.constant([[1, 2], [3, 4]], tf.int64))
    weights = tf.sparse.from_dense(tf.constant([[0.5, 0.5], [0.7, 0.7]]))
    x = [ids, weights, ids, weights]
    labels = np.zeros((2, features.NUM_TAGS), np.float32)
    labels[0, 0] = labels[1, 1] = 1
    net = model.build(**SMALL)
    wide = [net.get_layer(f"{head}_wide") for head in model.HEADS]
    net.get_layer("margin_wide").bias.assign(np.full(features.NUM_TAGS, 5.0, np.float32))
    before = [layer.kernel.numpy().copy() for layer in wide]
    margin = slice(features.NUM_TAGS, None)
    with_wide = net.predict(x, verbose=0)[:, margin]
    with model.margin_wide_idle(net):
        net.fit(x, labels, epochs=3, verbose=0)
        idle = net.predict(x, verbose=0)[:, margin]
    probability, margin_kernel = (layer.kernel.numpy() for layer in wide)
    assert not np.allclose(probability, before[0])
    assert np.array_equal(margin_kernel, before[1])
    # The margin wide bias of 5 counts outside, and not within.
    assert (with_wide > 2).all() and (idle < 2).all()
    assert (net.predict(x, verbose=0)[:, margin] > 2).all()
    assert net.get_layer("margin_wide").trainable
