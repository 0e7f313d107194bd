"""The network's two heads: what each one is trained on, and how the model scores."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from modules import features, model


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
    net = model.build(8, 0.0, 1e-3)
    ids = tf.sparse.from_dense(tf.constant([[1, 2]], tf.int64))
    weights = tf.sparse.from_dense(tf.constant([[0.5, 0.5]]))
    out = net([ids, weights, ids, weights])
    assert out.shape == (1, len(model.HEADS) * features.NUM_TAGS)
    assert net.get_layer("logits").input[0].name.startswith(model.HEADS[0])
