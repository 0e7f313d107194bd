"""Transform's preprocessing_fn: every bit of text handling lives here.

The same graph runs at training time (Transform), at evaluation time (TFMA calls the
model's transform_features signature) and at serving time (the model's serving_default
signature embeds it), so serving sees exactly what training saw.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from modules import features
from modules.stopwords import ENGLISH as STOP_WORDS

# The seed's text_prepare: these become spaces, then anything outside the kept alphabet
# goes. '#' and '+' stay so that c#, c++ and f# survive.
REPLACE_BY_SPACE = r"[/(){}\[\]\|@,;]"
BAD_SYMBOLS = r"[^0-9a-z #+_]"

NGRAM_RANGE = (1, 2)
MAX_TERMS = 30_000
MIN_TERM_COUNT = 2
OOV_BUCKETS = 1
# Width of the TF-IDF vector the model reads: every vocabulary id plus the OOV bucket.
TERM_SPACE = MAX_TERMS + OOV_BUCKETS


def clean_titles(titles: tf.Tensor) -> tf.Tensor:
    """Lower-case and strip symbols, as the seed's text_prepare (stop words come later)."""
    text = tf.strings.lower(titles, encoding="utf-8")
    text = tf.strings.regex_replace(text, REPLACE_BY_SPACE, " ")
    return tf.strings.regex_replace(text, BAD_SYMBOLS, "")


def tokens_without_stop_words(cleaned: tf.Tensor) -> tf.SparseTensor:
    """Whitespace tokens of each cleaned title, minus English stop words."""
    tokens = tf.strings.split(cleaned)  # RaggedTensor [batch, None]
    stop = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(STOP_WORDS), tf.ones(len(STOP_WORDS), tf.int64)
        ),
        default_value=0,
    )
    is_stop = tf.ragged.map_flat_values(stop.lookup, tokens)
    kept = tf.ragged.boolean_mask(tokens, tf.equal(is_stop, 0))
    return kept.to_sparse()


def _titles_1d(title: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """The title feature as a dense [batch] string tensor, whatever form it arrived in."""
    if isinstance(title, tf.SparseTensor):
        title = tf.sparse.to_dense(title, default_value="")
    return tf.reshape(title, [-1])


def l2_normalize_rows(weights: tf.SparseTensor) -> tf.SparseTensor:
    """Scale each title's TF-IDF vector to unit length, as sklearn's TfidfVectorizer does:
    short and long titles then weigh the same."""
    rows = weights.indices[:, 0]
    squared = tf.math.unsorted_segment_sum(
        tf.square(weights.values), rows, num_segments=weights.dense_shape[0]
    )
    norms = tf.sqrt(tf.gather(squared, rows))
    return tf.SparseTensor(weights.indices, weights.values / norms, weights.dense_shape)


def preprocessing_fn(inputs: dict) -> dict:
    tokens = tokens_without_stop_words(clean_titles(_titles_1d(inputs[features.TITLE])))
    terms = tft.ngrams(tokens, NGRAM_RANGE, separator=" ")
    term_ids = tft.compute_and_apply_vocabulary(
        terms,
        top_k=MAX_TERMS,
        frequency_threshold=MIN_TERM_COUNT,
        num_oov_buckets=OOV_BUCKETS,
        vocab_filename=features.TERM_VOCAB,
    )
    # Titles whose every term is a stop word yield no ids; tfidf handles empty rows.
    ids, weights = tft.tfidf(term_ids, TERM_SPACE)
    weights = l2_normalize_rows(weights)

    # Serving requests carry no tags: TFT prunes this branch when `tags` is absent.
    tag_ids = tft.compute_and_apply_vocabulary(
        inputs[features.TAGS], top_k=features.NUM_TAGS, vocab_filename=features.TAG_VOCAB
    )  # a tag outside the training vocabulary maps to -1, which one_hot turns into zeros
    dense_ids = tf.sparse.to_dense(tag_ids, default_value=-1)
    multi_hot = tf.reduce_max(tf.one_hot(dense_ids, features.NUM_TAGS, dtype=tf.float32), axis=1)
    return {
        features.TERM_IDS: ids,
        features.TERM_WEIGHTS: weights,
        features.LABEL: tf.ensure_shape(multi_hot, [None, features.NUM_TAGS]),
    }
