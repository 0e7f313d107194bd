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
