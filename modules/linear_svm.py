"""The margin head, solved as a linear SVM after the network has trained.

The margin head's job is the decision (model.py: F1 and exact match come from it). Its
linear parts are a linear SVM's function class, but the network only gets near that
SVM's optimum: a few epochs of Adam on the plain hinge loss, stopped early. A linear SVM
over the same inputs solved to its optimum with the squared hinge loss (LinearSVC,
liblinear; the squared hinge is what makes it strong) decides better: in full pipeline
runs, replacing the margin head by it lifted every metric (docs/model.md). So once the
network has trained, solve_margin_head() writes that SVM into the head:

  margin = SVM(word TF-IDF, char TF-IDF, EMBEDDING_WEIGHT * embedding)

in the head's own layers (wide kernel and bias, chars kernel, embedding kernel; the
deep part set to zero, as the SVM does not read the hidden layer). The
served graph does not change: the probability head still comes from the network,
scores() blends both, and serving still takes raw titles.
"""

from __future__ import annotations

import joblib
import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from sklearn.svm import LinearSVC

from contract import features
from modules.preprocessing import CHAR_SPACE, TERM_SPACE

# The embedding block's weight against the two TF-IDF blocks (each of unit length). A
# larger weight means less regularization on it; 1.5 beat 1 and 2 (docs/model.md).
EMBEDDING_WEIGHT = 1.5
# A tag that never occurs in the training rows cannot be fitted: its margin is this
# constant, below the decision point, as the hinge loss would leave it (and minus it for
# a tag on every row).
ABSENT_TAG_MARGIN = -1.0


def design_matrix(batches, char_grams: bool) -> tuple[sp.csr_matrix, np.ndarray]:
    """(x, labels): the SVM's rows from a dataset of (Transform outputs, labels) batches.
    x's columns: the word TF-IDF space, then the char space (when char_grams), then the
    weighted embedding (when the inputs carry one)."""
    blocks, labels = [], []
    for inputs, y in batches:
        rows = [_sparse(inputs[features.TERM_IDS], inputs[features.TERM_WEIGHTS], TERM_SPACE)]
        if char_grams:
            ids, weights = inputs[features.CHAR_IDS], inputs[features.CHAR_WEIGHTS]
            rows.append(_sparse(ids, weights, CHAR_SPACE))
        if features.EMBEDDING in inputs:
            rows.append(sp.csr_matrix(EMBEDDING_WEIGHT * inputs[features.EMBEDDING].numpy()))
        blocks.append(sp.hstack(rows, format="csr"))
        labels.append(y.numpy())
    return sp.vstack(blocks, format="csr"), np.concatenate(labels)


def _sparse(ids: tf.SparseTensor, weights: tf.SparseTensor, space: int) -> sp.csr_matrix:
    rows = ids.indices[:, 0].numpy()
    return sp.csr_matrix(
        (weights.values.numpy(), (rows, ids.values.numpy())), shape=(int(ids.dense_shape[0]), space)
    )


def fit(x: sp.csr_matrix, labels: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(coef [columns of x, tags], intercept [tags]): one LinearSVC per tag (squared
    hinge, L2, the bench's baseline), the tags spread over two threads (liblinear
    releases the GIL)."""

    def one(tag: int) -> tuple[np.ndarray, float]:
        y = labels[:, tag] > 0.5
        if not y.any():  # LinearSVC needs both classes
            return np.zeros(x.shape[1]), ABSENT_TAG_MARGIN
        if y.all():
            return np.zeros(x.shape[1]), -ABSENT_TAG_MARGIN
        svm = LinearSVC(C=c, dual=True, random_state=0).fit(x, y)
        return svm.coef_[0], float(svm.intercept_[0])

    solved = joblib.Parallel(n_jobs=2, prefer="threads")(
        joblib.delayed(one)(tag) for tag in range(labels.shape[1])
    )
    return np.stack([coef for coef, _ in solved], axis=1), np.array([b for _, b in solved])


def set_margin_head(net: tf.keras.Model, coef: np.ndarray, intercept: np.ndarray) -> None:
    """Write the SVM into the margin head's layers (model.build's names), so that the
    head's logits are the SVM's margins. Refuses, changing nothing, an SVM whose inputs
    are not the head's."""
    names = {layer.name for layer in net.layers}
    # (layer, its block of the SVM's columns, the factor from SVM weight to layer weight)
    blocks = [("margin_wide", TERM_SPACE), ("margin_wide_chars", CHAR_SPACE)]
    blocks += [("margin_embedding", features.EMBEDDING_WIDTH)]
    blocks = [(net.get_layer(name), width) for name, width in blocks if name in names]
    if sum(width for _, width in blocks) != coef.shape[0]:
        raise ValueError(
            f"the SVM has {coef.shape[0]} inputs, the margin head "
            f"{sum(width for _, width in blocks)}"
        )
    start = 0
    for layer, width in blocks:
        # TfidfVector outputs (x @ kernel + bias) * scale; the embedding's input is
        # unweighted where the SVM read EMBEDDING_WEIGHT times it.
        factor = 1 / float(layer.scale.numpy()) if hasattr(layer, "scale") else EMBEDDING_WEIGHT
        layer.kernel.assign(coef[start : start + width] * factor)
        bias = intercept * factor if layer.name == "margin_wide" else np.zeros_like(intercept)
        layer.bias.assign(bias)
        start += width
    deep = net.get_layer("margin_deep")
    deep.kernel.assign(tf.zeros_like(deep.kernel))
    deep.bias.assign(tf.zeros_like(deep.bias))


def solve_margin_head(net: tf.keras.Model, batches, c: float, char_grams: bool) -> None:
    """Replace the trained net's margin head by the linear SVM of cost c on these
    (inputs, labels) batches: the training split, one pass."""
    x, labels = design_matrix(batches, char_grams)
    set_margin_head(net, *fit(x, labels, c))
