"""Start training from the latest blessed model's weights (TFX Trainer's base_model).

Transform recomputes the term and tag vocabularies on every run, so an id in the new run
need not mean what it meant to the base model: the term "python list" may move from row
812 to row 790, and tags reorder by frequency. Weights are therefore carried over by
name, through the vocabularies both models ship as assets: a row or column whose term or
tag exists in both models gets the base model's values; a new term or tag keeps its
fresh initialisation. model.VOCAB_AXES says which axis of which weight is indexed by
which vocabulary; every other weight is copied when its shape matches. A base model
whose architecture differs (another width, say) is not used: training starts cold.
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from modules import encoder
from modules.model import VOCAB_AXES
from modules.preprocessing import VOCABULARY_OOV_BUCKETS


def read_vocabulary(path: str) -> list[str]:
    with tf.io.gfile.GFile(path, "rb") as f:
        return [line.rstrip(b"\n").decode("utf-8") for line in f]


def old_to_new(
    old: list[str], new: list[str], oov_buckets: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (new_ids, old_ids) along an axis of `size` entries.

    Entries both vocabularies hold map by name. OOV buckets sit right after each
    vocabulary (TFT's layout), so bucket k maps to bucket k. Positions past the
    vocabulary and its buckets are tag columns no tag was trained on (the data held fewer
    tags than the axis): each takes the values of such a column of the base model, in
    order, wrapping around, as they are alike in never having seen a positive. Without
    one, it keeps its fresh values.
    """
    position = {name: i for i, name in enumerate(old)}
    pairs = [(i, position[name]) for i, name in enumerate(new) if name in position]
    pairs += [(len(new) + k, len(old) + k) for k in range(oov_buckets)]
    new_unused = range(len(new) + oov_buckets, size)
    old_unused = range(len(old) + oov_buckets, size)
    if old_unused:
        pairs += [(i, old_unused[k % len(old_unused)]) for k, i in enumerate(new_unused)]
    new_ids, old_ids = zip(*pairs, strict=True) if pairs else ((), ())
    return np.array(new_ids, dtype=np.int64), np.array(old_ids, dtype=np.int64)


def remap(
    fresh: np.ndarray, base: np.ndarray, axes: dict[int, tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """fresh with base's values where every vocabulary-indexed axis maps (see old_to_new)."""

    def grid(array: np.ndarray, side: int) -> tuple:
        return np.ix_(
            *(axes[a][side] if a in axes else np.arange(n) for a, n in enumerate(array.shape))
        )

    out = np.array(fresh, copy=True)  # a 0-d weight comes back from numpy() as a scalar
    out[grid(fresh, 0)] = base[grid(base, 1)]
    return out


def load(
    net: tf.keras.Model, base_model_dir: str, vocabularies: dict[str, tuple[list[str], int]]
) -> str | None:
    """Set net's weights from the base model. Returns None when done, else why not.
    vocabularies: this run's, as vocabularies() gives them: (entries, OOV buckets) by name."""
    try:
        encoder.register_ops()
        base = tf.saved_model.load(base_model_dir)
    except (OSError, ValueError) as e:
        return f"cannot load the base model {base_model_dir}: {e}"
    base_values = {v.name.split(":")[0]: v.numpy() for v in base.variables}
    old_vocabularies = {
        name: read_vocabulary(f"{base_model_dir}/assets/{name}") for name in vocabularies
    }
    updates = []
    for weight in net.weights:
        name = weight.name.split(":")[0]
        if name not in base_values:
            return f"the base model has no weight {name}"
        fresh, old = np.asarray(weight.numpy()), np.asarray(base_values[name])
        axes = VOCAB_AXES.get(name, {})
        for axis in range(fresh.ndim):
            if axis not in axes and fresh.shape[axis] != old.shape[axis]:
                return f"{name} is {old.shape} in the base model, {fresh.shape} now"
        mapped = {
            axis: old_to_new(old_vocabularies[v], *vocabularies[v], size=fresh.shape[axis])
            for axis, v in axes.items()
        }
        updates.append((weight, remap(fresh, old, mapped)))
    for weight, value in updates:
        weight.assign(value)
    kept = {n: len(set(old_vocabularies[n]) & set(vocabularies[n][0])) for n in vocabularies}
    logging.info("warm start from %s: entries carried over per vocabulary %s", base_model_dir, kept)
    return None


def vocabularies(tft_output) -> dict[str, tuple[list[str], int]]:
    """This run's vocabularies, with their OOV bucket counts, by asset name."""
    return {
        name: ([t.decode() for t in tft_output.vocabulary_by_name(name)], buckets)
        for name, buckets in VOCABULARY_OOV_BUCKETS.items()
    }
