"""What the monitor describes of each request: the title, features derived from it, and
the model's outputs. One function for training titles and for logged requests, so the two
sides are described the same way.

    title          the title (TFDV: a string feature; the domain check reads it)
    title_words    words, split on whitespace, before any cleaning
    title_chars    characters
    oov_share      share of the model's tokens (its own cleaning and stop words,
                   modules/preprocessing.py) that are not in its term vocabulary
    code_share     share of whitespace tokens that look like code: brackets, operators,
                   dotted or snake_case names, camelCase, paths
    top_tag        the highest-scoring tag
    predicted_tags how many tags the model gave
    top_score      the highest score
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import tensorflow as tf

from modules import preprocessing

NUMERIC = ("title_words", "title_chars", "oov_share", "code_share", "predicted_tags", "top_score")
CATEGORICAL = ("top_tag",)
CODE_TOKEN = re.compile(r"[(){}\[\]<>=;$@\\]|\w\.\w|\w_\w|[a-z][A-Z]|::|->|/\w")


def vocabulary(model_dir: str) -> frozenset[str]:
    """The served model's term vocabulary (Transform's asset inside the SavedModel)."""
    with tf.io.gfile.GFile(f"{model_dir.rstrip('/')}/assets/terms") as f:
        return frozenset(f.read().split("\n"))


def _oov_shares(titles: list[str], vocab: frozenset[str]) -> list[float]:
    cleaned = preprocessing.clean_titles(tf.constant(titles))
    tokens = tf.sparse.to_dense(preprocessing.tokens_without_stop_words(cleaned), b"").numpy()
    shares = []
    for row in tokens:
        words = [w.decode() for w in row if w]
        shares.append(sum(w not in vocab for w in words) / len(words) if words else 1.0)
    return shares


def describe(
    titles: list[str],
    scores: np.ndarray,
    predicted: np.ndarray,
    tags: list[str],
    vocab: frozenset[str],
) -> pd.DataFrame:
    """One row per request. scores, predicted: [n, tags]; tags: the column names."""
    words = [t.split() for t in titles]
    top = scores.argmax(axis=1) if len(titles) else np.zeros(0, int)
    return pd.DataFrame(
        {
            "title": titles,
            "title_words": [len(w) for w in words],
            "title_chars": [len(t) for t in titles],
            "oov_share": _oov_shares(titles, vocab) if titles else [],
            "code_share": [
                sum(bool(CODE_TOKEN.search(x)) for x in w) / max(1, len(w)) for w in words
            ],
            "top_tag": [tags[i] for i in top],
            "predicted_tags": predicted.sum(axis=1).astype(int) if len(titles) else [],
            "top_score": scores.max(axis=1).astype(float) if len(titles) else [],
        }
    )
