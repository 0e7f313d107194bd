"""Warm start carries weights over by term and tag name, whatever ids Transform gave them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from contract import features
from modules import model, warm_start
from modules.preprocessing import VOCABULARY_OOV_BUCKETS
from tests.hyperparameters import network


def test_entries_map_by_name_and_oov_buckets_follow_their_vocabulary():
    new_ids, old_ids = warm_start.old_to_new(["a", "b", "c"], ["c", "x", "a"], 1, size=4)
    assert dict(zip(new_ids.tolist(), old_ids.tolist(), strict=True)) == {0: 2, 2: 0, 3: 3}


def test_positions_past_the_vocabulary_take_unused_positions_of_the_base_model():
    new_ids, old_ids = warm_start.old_to_new(["a", "b", "c"], ["b"], 0, size=5)
    assert dict(zip(new_ids.tolist(), old_ids.tolist(), strict=True)) == {
        0: 1,
        1: 3,
        2: 4,
        3: 3,
        4: 4,
    }


def test_remap_moves_rows_and_columns_and_keeps_fresh_values_for_new_entries():
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    fresh = np.full((3, 4), -1.0, dtype=np.float32)
    rows = (np.array([0, 1]), np.array([2, 0]))  # new row 0 <- old 2, new 1 <- old 0
    cols = (np.array([3]), np.array([1]))  # new column 3 <- old column 1
    out = warm_start.remap(fresh, base, {0: rows, 1: cols})
    assert out[0, 3] == base[2, 1] and out[1, 3] == base[0, 1]
    assert (out[2] == -1).all() and (out[:, :3] == -1).all()


def _vocabularies(model_dir) -> dict[str, tuple[list[str], int]]:
    """The model's own vocabularies, as warm_start.vocabularies gives a run's."""
    return {
        name: (warm_start.read_vocabulary(str(model_dir / "assets" / name)), buckets)
        for name, buckets in VOCABULARY_OOV_BUCKETS.items()
    }


def test_a_net_warm_started_from_a_model_predicts_what_it_predicts(tagger_model):
    net = model.build(
        **network(hidden_units=64, dropout=0.1, learning_rate=0.01, wide_step_scale=1.0)
    )
    assert warm_start.load(net, str(tagger_model), _vocabularies(tagger_model)) is None
    served = tf.saved_model.load(str(tagger_model))
    titles = tf.constant(["how to sort a list in python", "jquery click event not firing"])
    expected = served.signatures["serving_default"](title=titles)[features.OUTPUT_SCORES]
    transformed = served.tft_layer({features.TITLE: tf.reshape(titles, [-1, 1])})
    got = model.scores(net({k: transformed[k] for k in features.MODEL_INPUTS}))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_reordered_vocabularies_carry_each_term_and_tag_to_its_new_place(tagger_model):
    vocab = _vocabularies(tagger_model)
    shuffled = {n: (list(reversed(v)), buckets) for n, (v, buckets) in vocab.items()}
    net = model.build(
        **network(hidden_units=64, dropout=0.1, learning_rate=0.01, wide_step_scale=1.0)
    )
    assert warm_start.load(net, str(tagger_model), shuffled) is None
    served = tf.saved_model.load(str(tagger_model))
    base = {v.name.split(":")[0]: v.numpy() for v in served.variables}
    terms, tags = vocab[features.TERM_VOCAB][0], vocab[features.TAG_VOCAB][0]
    new_term = shuffled[features.TERM_VOCAB][0].index(terms[3])
    new_tag = shuffled[features.TAG_VOCAB][0].index(tags[1])
    grams = vocab[features.CHAR_VOCAB][0]
    new_gram = shuffled[features.CHAR_VOCAB][0].index(grams[5])
    for head in model.HEADS:
        wide = net.get_layer(f"{head}_wide").kernel.numpy()
        assert wide[new_term, new_tag] == base[f"{head}_wide/kernel"][3, 1]
        # The OOV bucket, right after each vocabulary, maps to the old one.
        assert wide[len(terms), new_tag] == base[f"{head}_wide/kernel"][len(terms), 1]
        chars = net.get_layer(f"{head}_wide_chars").kernel.numpy()
        assert chars[new_gram, new_tag] == base[f"{head}_wide_chars/kernel"][5, 1]


def test_a_base_model_of_another_width_is_not_used(tagger_model):
    net = model.build(
        **network(hidden_units=32, dropout=0.1, learning_rate=0.01, wide_step_scale=1.0)
    )
    before = [w.numpy() for w in net.weights]
    why_not = warm_start.load(net, str(tagger_model), _vocabularies(tagger_model))
    assert "tfidf_dense/kernel" in why_not and "(30001, 64)" in why_not
    assert all((w.numpy() == b).all() for w, b in zip(net.weights, before, strict=True))
