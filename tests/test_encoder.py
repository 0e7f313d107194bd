"""The in-graph sentence encoder of the encoder setting (modules/encoder.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from contract import features
from modules import encoder, model
from tests.hyperparameters import network


@pytest.fixture(scope="module")
def minilm(tmp_path_factory) -> encoder.MiniLM:
    return encoder.MiniLM(encoder.model_files(tmp_path_factory.mktemp("minilm")))


def test_titles_about_the_same_thing_embed_close_and_others_far(minilm):
    titles = [
        "How to merge two dictionaries in Python",
        "Combine two dicts into one in python",
        "jQuery click event not firing on dynamically added button",
        "",  # an empty title still gets a vector ([CLS] [SEP])
    ]
    vectors = minilm(tf.constant(titles)).numpy()
    assert vectors.shape == (4, encoder.HIDDEN)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.7 > 0.3 > unrelated


def test_an_embedding_does_not_depend_on_the_rest_of_the_batch(minilm):
    """Padding is masked out: a short title embeds the same alone or beside a long one."""
    short = "numpy array slicing"
    alone = minilm(tf.constant([short])).numpy()[0]
    padded = minilm(tf.constant([short, "a much longer title " * 20])).numpy()[0]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_bytes_that_are_not_utf8_do_not_fail_the_batch(minilm):
    vectors = minilm(tf.constant([b"caf\xe9 python", b"pandas groupby"])).numpy()
    assert np.isfinite(vectors).all()


def test_the_network_takes_an_embedding_as_its_last_input():
    net = model.build(
        **network(hidden_units=16, dropout=0.0, learning_rate=1e-3, wide_step_scale=1.0),
        embedding_width=8,
    )
    assert [i.name for i in net.inputs][-1] == "embedding"
    ids = tf.sparse.from_dense(tf.constant([[1, 2]], tf.int64))
    weights = tf.sparse.from_dense(tf.constant([[0.5, 0.5]]))
    logits = net([ids, weights, ids, weights, tf.ones([1, 8])])
    assert logits.shape == (1, len(model.HEADS) * features.NUM_TAGS)
    assert model.scores(logits).shape == (1, features.NUM_TAGS)
