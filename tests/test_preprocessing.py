"""preprocessing_fn through tf.Transform on hand-written rows."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from contract import features
from modules import preprocessing

ROWS = [
    {"title": [b"How to sort a List in Python?"], "tags": [b"python", b"list"]},
    {"title": [b"C# List<T> sort (fast)"], "tags": [b"c#", b"list"]},
    {"title": [b"Sort a list in python, fast!"], "tags": [b"python"]},
    {"title": [b"the a an of"], "tags": [b"python"]},
]
SPEC = {
    features.TITLE: tf.io.FixedLenFeature([1], tf.string),
    features.TAGS: tf.io.VarLenFeature(tf.string),
}


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tft")
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))
    with tft_beam.Context(temp_dir=str(tmp / "tmp")):
        (rows, _), transform_fn = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp / "out"))
    return rows, tft.TFTransformOutput(str(tmp / "out"))


def test_clean_titles_follows_the_seed_text_prepare():
    out = preprocessing.clean_titles(tf.constant(["C# List<T> (fast), [x]|y@z; ÄB/c", "C++ & F#"]))
    # Brackets, pipes, commas... become spaces; other symbols and non-ASCII letters go.
    assert [" ".join(s.decode().split()) for s in out.numpy()] == [
        "c# listt fast x y z b c",
        "c++ f#",
    ]


def test_stop_words_are_dropped():
    tokens = preprocessing.tokens_without_stop_words(tf.constant(["how to sort a list in python"]))
    assert [t.decode() for t in tokens.values.numpy()] == ["sort", "list", "python"]


def test_vocabulary_holds_unigrams_and_bigrams_seen_twice(transformed):
    _, output = transformed
    terms = {t.decode() for t in output.vocabulary_by_name(features.TERM_VOCAB)}
    # "sort", "list", "python", "fast" appear in two titles or more, as do the bigrams.
    assert {"sort", "list", "python", "fast", "sort list", "list python"} <= terms
    assert "how" not in terms and "c#" not in terms  # stop word; seen once


def test_tfidf_ids_and_weights_line_up(transformed):
    rows, output = transformed
    vocab = [t.decode() for t in output.vocabulary_by_name(features.TERM_VOCAB)]
    first = rows[0]
    assert len(first[features.TERM_IDS]) == len(first[features.TERM_WEIGHTS]) > 0
    named = {vocab[i] for i in first[features.TERM_IDS] if i < len(vocab)}
    assert {"sort", "list", "python"} <= named
    assert np.all(first[features.TERM_WEIGHTS] > 0)
    # A title of stop words only has no terms at all.
    assert len(rows[3][features.TERM_IDS]) == 0


def test_labels_are_multi_hot_over_the_tag_vocabulary(transformed):
    rows, output = transformed
    tags = [t.decode() for t in output.vocabulary_by_name(features.TAG_VOCAB)]
    assert tags[0] == "python"  # most frequent first
    for row, raw in zip(rows, ROWS, strict=True):
        label = row[features.LABEL]
        assert label.shape == (features.NUM_TAGS,) and label.dtype == np.float32
        assert {tags[i] for i in np.flatnonzero(label)} == {t.decode() for t in raw["tags"]}


def test_char_ngrams_are_taken_inside_padded_words_and_survive_bad_bytes():
    grams = preprocessing.char_ngrams(tf.constant([b"Node.js ok", b"", b"\xff!"]))
    rows = [set(r) - {b""} for r in tf.sparse.to_dense(grams, default_value=b"").numpy()]
    assert {b" n", b"no", b".js", b"js ", b" node", b" ok", b"ok "} <= rows[0]
    assert b"s o" not in rows[0]  # never across two words
    assert all(2 <= len(g.decode()) <= 5 for g in rows[0])
    assert rows[1] == set()
    assert "\ufffd!".encode() in rows[2]  # the bad byte became U+FFFD


def test_char_ngram_and_slice_features_are_transformed(transformed):
    rows, output = transformed
    grams = output.vocabulary_by_name(features.CHAR_VOCAB)
    assert b"sort" in grams and b" li" in grams
    first = rows[0]
    assert len(first[features.CHAR_IDS]) == len(first[features.CHAR_WEIGHTS]) > 0
    assert np.isclose(np.linalg.norm(first[features.CHAR_WEIGHTS]), 1.0)
    assert [r[features.TITLE_WORDS] for r in rows] == [
        b"5-8 words",
        b"1-4 words",
        b"5-8 words",
        b"1-4 words",
    ]
    assert [r[features.TRUE_TAGS] for r in rows] == [2, 2, 1, 1]
