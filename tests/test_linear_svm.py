"""The margin head solved as a linear SVM: the network's margin logits become the SVM's
margins, read from the same Transform outputs the network reads."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from sklearn.svm import LinearSVC

from contract import features
from modules import linear_svm, model
from modules.preprocessing import CHAR_SPACE, TERM_SPACE
from tests.hyperparameters import network

ROWS = 60


def rows(embedding: bool, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Transform-like inputs: 3 distinct word terms and 4 char grams per title; the first
    term (one of 12) decides one of 4 tags, the other two (of 30) are noise; tag 5 never
    occurs."""
    rng = np.random.default_rng(seed)
    noise = np.stack([rng.choice(30, 2, replace=False) for _ in range(ROWS)]) + 12
    term_ids = np.column_stack([rng.integers(0, 12, ROWS), noise])
    char_ids = np.stack([rng.choice(CHAR_SPACE - 1, 4, replace=False) for _ in range(ROWS)])
    labels = np.zeros((ROWS, features.NUM_TAGS), np.float32)
    labels[np.arange(ROWS), term_ids[:, 0] % 4] = 1

    def sparse(values):
        return tf.sparse.from_dense(tf.constant(values))

    x = {
        features.TERM_IDS: sparse(term_ids + 1),  # +1: from_dense drops zeros
        features.TERM_WEIGHTS: sparse(np.full((ROWS, 3), 0.5, np.float32)),
        features.CHAR_IDS: sparse(char_ids + 1),
        features.CHAR_WEIGHTS: sparse(rng.uniform(0.1, 1, (ROWS, 4)).astype(np.float32)),
    }
    if embedding:
        x[features.EMBEDDING] = tf.constant(rng.normal(size=(ROWS, 384)).astype(np.float32))
    return x, labels


def written_out(x: dict) -> np.ndarray:
    """rows()'s inputs as the SVM's dense design matrix, built by hand: word terms, char
    grams, then the weighted embedding when there is one."""
    terms = x[features.TERM_IDS].values.numpy().reshape(ROWS, 3)
    chars = x[features.CHAR_IDS].values.numpy().reshape(ROWS, 4)
    char_weights = x[features.CHAR_WEIGHTS].values.numpy().reshape(ROWS, 4)
    dense = np.zeros((ROWS, TERM_SPACE + CHAR_SPACE))
    for row in range(ROWS):
        dense[row, terms[row]] = 0.5
        dense[row, TERM_SPACE + chars[row]] = char_weights[row]
    if features.EMBEDDING in x:
        weighted = linear_svm.EMBEDDING_WEIGHT * x[features.EMBEDDING].numpy()
        dense = np.hstack([dense, weighted])
    return dense


def untrained_net(embedding: bool) -> tf.keras.Model:
    width = features.EMBEDDING_WIDTH if embedding else 0
    return model.build(
        **network(hidden_units=16, dropout=0.5, learning_rate=1e-3, wide_step_scale=10.0),
        embedding_width=width,
    )


def margins(net: tf.keras.Model, x: dict) -> np.ndarray:
    return np.split(net(x, training=False).numpy(), len(model.HEADS), axis=1)[1]


@pytest.mark.parametrize("embedding", [False, True])
def test_the_margin_head_answers_as_the_svm_and_the_probability_head_is_kept(embedding):
    x, labels = rows(embedding)
    net, batches = untrained_net(embedding), tf.data.Dataset.from_tensor_slices((x, labels))
    batches = batches.batch(16)
    before = np.split(net(x, training=False).numpy(), len(model.HEADS), axis=1)[0]

    linear_svm.solve_margin_head(net, batches, c=0.5, char_grams=True)

    # The SVM fitted directly, on the same rows written out by hand.
    dense = written_out(x)
    for tag in range(4):
        svm = LinearSVC(C=0.5, dual=True, random_state=0).fit(dense, labels[:, tag])
        np.testing.assert_allclose(
            margins(net, x)[:, tag], svm.decision_function(dense), rtol=1e-4, atol=1e-4
        )
    # A tag absent from the rows gets a constant margin below the decision point.
    np.testing.assert_allclose(margins(net, x)[:, 5], linear_svm.ABSENT_TAG_MARGIN, atol=1e-6)
    # The probability head is the trained network's, untouched.
    after = np.split(net(x, training=False).numpy(), len(model.HEADS), axis=1)[0]
    np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("embedding", [False, True])
def test_with_an_nb_weight_the_margin_is_mixed_with_the_nb_svm(embedding):
    x, labels = rows(embedding)
    net, batches = untrained_net(embedding), tf.data.Dataset.from_tensor_slices((x, labels))
    batches = batches.batch(16)

    linear_svm.solve_margin_head(net, batches, c=0.5, char_grams=True, nb_weight=0.3)

    # Wang and Manning's NB-SVM, by hand: each TF-IDF column scaled by the log ratio of
    # its smoothed share of the rows with the tag to its share of the rows without;
    # the embedding's columns keep their scale.
    dense = written_out(x)
    counted = TERM_SPACE + CHAR_SPACE
    present = dense[:, :counted] > 0
    for tag in range(4):
        y = labels[:, tag] > 0
        with_tag = linear_svm.NB_ALPHA + present[y].sum(axis=0)
        without = linear_svm.NB_ALPHA + present[~y].sum(axis=0)
        scale = np.ones(dense.shape[1])
        scale[:counted] = np.log(with_tag / with_tag.sum()) - np.log(without / without.sum())
        nb = LinearSVC(C=linear_svm.NB_C, dual=True, random_state=0).fit(dense * scale, y)
        plain = LinearSVC(C=0.5, dual=True, random_state=0).fit(dense, y)
        mixed = 0.7 * plain.decision_function(dense) + 0.3 * nb.decision_function(dense * scale)
        np.testing.assert_allclose(margins(net, x)[:, tag], mixed, rtol=1e-4, atol=1e-4)
        assert np.abs(mixed - plain.decision_function(dense)).max() > 0.01  # a real mix
    np.testing.assert_allclose(margins(net, x)[:, 5], linear_svm.ABSENT_TAG_MARGIN, atol=1e-6)


def test_without_char_grams_the_svm_reads_only_the_word_terms():
    x, labels = rows(embedding=False)
    labels[:, 6] = 1  # a tag on every row: one class too
    net = model.build(
        **network(
            hidden_units=16, dropout=0.5, learning_rate=1e-3, wide_step_scale=1.0, char_grams=False
        )
    )
    batches = tf.data.Dataset.from_tensor_slices((x, labels)).batch(16)
    matrix, _ = linear_svm.design_matrix(batches, char_grams=False)
    assert matrix.shape == (ROWS, TERM_SPACE)
    linear_svm.solve_margin_head(net, batches, c=0.5, char_grams=False)
    decided = margins(net, x)[:, :4] > 0
    assert (decided == (labels[:, :4] > 0)).mean() > 0.95  # the first term decides the tag
    np.testing.assert_allclose(margins(net, x)[:, 6], -linear_svm.ABSENT_TAG_MARGIN, atol=1e-6)


def test_a_margin_head_of_another_shape_is_refused():
    net = model.build(
        **network(hidden_units=16, dropout=0.5, learning_rate=1e-3, wide_step_scale=1.0)
    )
    coef = np.zeros((TERM_SPACE + 7, features.NUM_TAGS))
    before = [w.copy() for w in net.get_weights()]
    expected = f"the SVM has {TERM_SPACE + 7} inputs, the margin head {TERM_SPACE + CHAR_SPACE}"
    with pytest.raises(ValueError, match=expected):
        linear_svm.set_margin_head(net, coef, np.zeros(features.NUM_TAGS))
    for kept, now in zip(before, net.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)


def test_a_bound_above_the_split_changes_nothing_and_one_below_keeps_a_uniform_sample():
    x, labels = rows(embedding=False)
    batches = tf.data.Dataset.from_tensor_slices((x, labels)).batch(7)
    whole, whole_labels = linear_svm.design_matrix(batches, char_grams=True)
    bounded, bounded_labels = linear_svm.design_matrix(batches, char_grams=True, most=ROWS)
    assert (whole != bounded).nnz == 0 and (whole_labels == bounded_labels).all()
    np.testing.assert_allclose(whole.toarray(), written_out(x))  # the exact solve's rows

    # Below the bound: `most` of the split's rows, each with its own labels, in order.
    dense = written_out(x)
    for seed in range(3):
        sample, sample_labels = linear_svm.design_matrix(
            batches, char_grams=True, most=20, seed=seed
        )
        assert sample.shape[0] == 20
        picked = [int(np.flatnonzero((dense == row).all(axis=1))[0]) for row in sample.toarray()]
        assert picked == sorted(picked) and len(set(picked)) == 20
        np.testing.assert_array_equal(sample_labels, labels[picked])
    # Uniform: over many seeds each row is kept about most / ROWS of the time, the
    # rows early in the stream as often as the late ones (the stream is held twice over
    # at most, then cut to the smallest keys).
    kept = np.zeros(ROWS)
    for seed in range(300):
        sample, _ = linear_svm.design_matrix(batches, char_grams=True, most=20, seed=seed)
        for row in sample.toarray():
            kept[np.flatnonzero((dense == row).all(axis=1))[0]] += 1
    share = kept / 300
    assert abs(share.mean() - 20 / ROWS) < 1e-9
    assert abs(share[: ROWS // 2].mean() - share[ROWS // 2 :].mean()) < 0.05
    assert share.min() > 0.2 and share.max() < 0.5


def test_the_bounded_solve_is_the_exact_solve_on_the_rows_it_kept():
    x, labels = rows(embedding=False)
    batches = tf.data.Dataset.from_tensor_slices((x, labels)).batch(7)
    net = untrained_net(embedding=False)
    linear_svm.solve_margin_head(net, batches, c=0.5, char_grams=True, most=30, seed=4)
    sample, sample_labels = linear_svm.design_matrix(batches, char_grams=True, most=30, seed=4)
    dense, kept = written_out(x), sample.toarray()
    for tag in range(4):
        svm = LinearSVC(C=0.5, dual=True, random_state=0).fit(kept, sample_labels[:, tag])
        np.testing.assert_allclose(
            margins(net, x)[:, tag], svm.decision_function(dense), rtol=1e-4, atol=1e-4
        )
