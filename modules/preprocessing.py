"""Transform's preprocessing_fn: every bit of text handling lives here.

The same graph runs at training time (Transform), at evaluation time (TFMA calls the
model's transform_features signature) and at serving time (the model's serving_default
signature embeds it), so serving sees exactly what training saw.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from contract import features
from modules import encoder
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

# Character n-grams inside words (sklearn's char_wb): they catch what word terms miss,
# such as "node.js" vs "nodejs", versions ("python3"), and words seen once.
CHAR_NGRAM_RANGE = (2, 5)
MAX_CHAR_GRAMS = 40_000
CHAR_SPACE = MAX_CHAR_GRAMS + OOV_BUCKETS

# Title length buckets (words, before any cleaning) the Evaluator slices by.
TITLE_WORDS_BOUNDARIES = (5, 9, 13)
TITLE_WORDS_LABELS = ("1-4 words", "5-8 words", "9-12 words", "13+ words")

# OOV buckets each vocabulary's ids are followed by (modules/warm_start.py reads this).
VOCABULARY_OOV_BUCKETS = {
    features.TERM_VOCAB: OOV_BUCKETS,
    features.CHAR_VOCAB: OOV_BUCKETS,
    features.TAG_VOCAB: 0,
}


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


def char_ngrams(titles: tf.Tensor) -> tf.SparseTensor:
    """Character n-grams of each lower-cased word, padded with a space at both ends, so
    that a gram knows where words start and end. Punctuation stays: ".js" is a signal.
    Bytes that are not UTF-8 become U+FFFD instead of failing the request."""
    words = tf.strings.split(tf.strings.lower(titles, encoding="utf-8"))
    padded = tf.ragged.map_flat_values(lambda w: tf.strings.join([" ", w, " "]), words)
    chars = tf.strings.unicode_split(padded, "UTF-8", errors="replace")
    widths = list(range(CHAR_NGRAM_RANGE[0], CHAR_NGRAM_RANGE[1] + 1))
    grams = tf.strings.ngrams(chars, ngram_width=widths, separator="")
    return grams.merge_dims(1, 2).to_sparse()


def tfidf_vector(
    tokens: tf.SparseTensor, top_k: int, vocab_filename: str
) -> tuple[tf.SparseTensor, tf.SparseTensor]:
    """(ids, weights) of the tokens' L2-normalised TF-IDF vector over a learnt vocabulary
    of the top_k tokens seen at least MIN_TERM_COUNT times, plus the OOV bucket."""
    ids = tft.compute_and_apply_vocabulary(
        tokens,
        top_k=top_k,
        frequency_threshold=MIN_TERM_COUNT,
        num_oov_buckets=OOV_BUCKETS,
        vocab_filename=vocab_filename,
    )
    # Titles with no token at all yield no ids; tfidf handles empty rows.
    ids, weights = tft.tfidf(ids, top_k + OOV_BUCKETS)
    return ids, l2_normalize_rows(weights)


def title_words_bucket(titles: tf.Tensor) -> tf.Tensor:
    """The label of each title's length bucket, in words (TITLE_WORDS_LABELS)."""
    words = tf.strings.split(titles).row_lengths()
    index = tft.apply_buckets(words, tf.constant([TITLE_WORDS_BOUNDARIES], tf.int64))
    return tf.gather(tf.constant(TITLE_WORDS_LABELS), index)


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
    titles = _titles_1d(inputs[features.TITLE])
    tokens = tokens_without_stop_words(clean_titles(titles))
    terms = tft.ngrams(tokens, NGRAM_RANGE, separator=" ")
    term_ids, term_weights = tfidf_vector(terms, MAX_TERMS, features.TERM_VOCAB)
    char_ids, char_weights = tfidf_vector(char_ngrams(titles), MAX_CHAR_GRAMS, features.CHAR_VOCAB)

    # Serving requests carry no tags: TFT prunes this branch when `tags` is absent.
    tag_ids = tft.compute_and_apply_vocabulary(
        inputs[features.TAGS], top_k=features.NUM_TAGS, vocab_filename=features.TAG_VOCAB
    )  # a tag outside the training vocabulary maps to -1, which one_hot turns into zeros
    dense_ids = tf.sparse.to_dense(tag_ids, default_value=-1)
    multi_hot = tf.reduce_max(tf.one_hot(dense_ids, features.NUM_TAGS, dtype=tf.float32), axis=1)
    true_tags = tf.reduce_sum(
        tf.cast(tf.sparse.to_dense(inputs[features.TAGS], default_value="") != "", tf.int64), axis=1
    )
    return {
        features.TITLE_WORDS: title_words_bucket(titles),
        features.TRUE_TAGS: true_tags,
        features.TERM_IDS: term_ids,
        features.TERM_WEIGHTS: term_weights,
        features.CHAR_IDS: char_ids,
        features.CHAR_WEIGHTS: char_weights,
        features.LABEL: tf.ensure_shape(multi_hot, [None, features.NUM_TAGS]),
    }


def preprocessing_fn_with_encoder(inputs: dict) -> dict:
    """preprocessing_fn, plus each title's MiniLM sentence embedding (features.EMBEDDING):
    the encoder setting (`--encoder`). The encoder is frozen, so Transform
    computes the embedding once per example and the Trainer's epochs read it."""
    outputs = preprocessing_fn(inputs)
    embedding = encoder.embed_in_graph(_titles_1d(inputs[features.TITLE]))
    outputs[features.EMBEDDING] = tf.ensure_shape(embedding, [None, features.EMBEDDING_WIDTH])
    return outputs
