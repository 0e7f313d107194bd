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

With margin_nb_weight w > 0 the margin is a mix of two SVMs per tag:
(1 - w) * the SVM above + w * an NB-SVM (Wang and Manning, 2012): the same kind of SVM
on the TF-IDF columns scaled, per tag, by their naive Bayes log-count ratio, so that the
words that tell a tag apart start out with larger weights and are regularized less.
Both are linear in the same inputs, so the mix is one linear model, written into the
same layers. In full pipeline runs of the default setting it raised every F1 and left
AP and AUC where they were (docs/model.md).
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
# larger weight means less regularization on it; chosen on the eval split (docs/model.md).
EMBEDDING_WEIGHT = 1.5
# The NB-SVM's cost and the ratios' smoothing count (its alpha), chosen for the NB-SVM
# alone on the TF-IDF baseline's features, on the eval split (docs/model.md has the grid).
NB_C = 0.01
NB_ALPHA = 0.25
# What the Tuner may search besides the network's own hyperparameters (model.py).
HYPERPARAMETERS = ("margin_nb_weight",)
# A tag that never occurs in the training rows cannot be fitted: its margin is this
# constant, below the decision point, as the hinge loss would leave it (and minus it for
# a tag on every row).
ABSENT_TAG_MARGIN = -1.0


def design_matrix(
    batches, char_grams: bool, most: int = 0, seed: int = 0
) -> tuple[sp.csr_matrix, np.ndarray]:
    """(x, labels): the SVM's rows from a dataset of (Transform outputs, labels) batches.
    x's columns: the word TF-IDF space, then the char space (when char_grams), then the
    weighted embedding (when the inputs carry one).

    most > 0: at most that many rows, a uniform sample of the stream (each row draws a
    random key; the rows with the smallest keys are kept, in the stream's order), held
    at most twice over while the batches stream by. A split no longer than `most` is
    taken whole, in order, as if there were no bound."""
    rng = np.random.default_rng(seed)
    blocks, labels, keys, held = [], [], [], 0
    for inputs, y in batches:
        rows = [_sparse(inputs[features.TERM_IDS], inputs[features.TERM_WEIGHTS], TERM_SPACE)]
        if char_grams:
            ids, weights = inputs[features.CHAR_IDS], inputs[features.CHAR_WEIGHTS]
            rows.append(_sparse(ids, weights, CHAR_SPACE))
        if features.EMBEDDING in inputs:
            rows.append(sp.csr_matrix(EMBEDDING_WEIGHT * inputs[features.EMBEDDING].numpy()))
        blocks.append(sp.hstack(rows, format="csr", dtype=np.float64))
        labels.append(y.numpy())
        keys.append(rng.random(blocks[-1].shape[0]))
        held += blocks[-1].shape[0]
        if most and held > 2 * most:
            blocks, labels, keys = _smallest_keys(blocks, labels, keys, most)
            held = most
    if most and held > most:
        blocks, labels, keys = _smallest_keys(blocks, labels, keys, most)
    return sp.vstack(blocks, format="csr"), np.concatenate(labels)


def _smallest_keys(blocks, labels, keys, most: int) -> tuple[list, list, list]:
    """The `most` rows with the smallest keys, in their order, as one block."""
    every = np.concatenate(keys)
    kept = np.sort(np.argpartition(every, most - 1)[:most])
    x = sp.vstack(blocks, format="csr")[kept]
    return [x], [np.concatenate(labels)[kept]], [every[kept]]


def _sparse(ids: tf.SparseTensor, weights: tf.SparseTensor, space: int) -> sp.csr_matrix:
    rows = ids.indices[:, 0].numpy()
    return sp.csr_matrix(
        (weights.values.numpy(), (rows, ids.values.numpy())), shape=(int(ids.dense_shape[0]), space)
    )


def fit(x: sp.csr_matrix, labels: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(coef [columns of x, tags], intercept [tags]): one LinearSVC per tag (squared
    hinge, L2, the bench's baseline), the tags spread over two threads (liblinear
    releases the GIL)."""
    return _per_tag(x, labels, lambda y: _svm(x, y, c))


def fit_nb(
    x: sp.csr_matrix, labels: np.ndarray, counted: int, c: float = NB_C, alpha: float = NB_ALPHA
) -> tuple[np.ndarray, np.ndarray]:
    """fit()'s result for the NB-SVM: per tag, its first `counted` columns (the TF-IDF
    blocks) scaled by log_count_ratios() before the SVM, the scale folded back into
    coef, so that x @ coef + intercept is its margin. Other columns keep their scale."""
    present = x[:, :counted] > 0
    present = present.astype(np.float64).tocsc()

    def one(y: np.ndarray) -> tuple[np.ndarray, float]:
        ratios = np.ones(x.shape[1])
        ratios[:counted] = log_count_ratios(present, y, alpha)
        coef, intercept = _svm(x @ sp.diags(ratios), y, c)
        return ratios * coef, intercept

    return _per_tag(x, labels, one)


def log_count_ratios(present: sp.csc_matrix, y: np.ndarray, alpha: float) -> np.ndarray:
    """Per column, log(p / |p|_1) - log(q / |q|_1), where p and q count the rows with
    and without the tag in which the column is present, alpha added to each count."""
    positive = alpha + np.asarray(present[y].sum(axis=0)).ravel()
    negative = alpha + np.asarray(present[~y].sum(axis=0)).ravel()
    return np.log(positive / positive.sum()) - np.log(negative / negative.sum())


def _svm(x: sp.csr_matrix, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    svm = LinearSVC(C=c, dual=True, random_state=0).fit(x, y)
    return svm.coef_[0], float(svm.intercept_[0])


def _per_tag(x: sp.csr_matrix, labels: np.ndarray, solve) -> tuple[np.ndarray, np.ndarray]:
    """solve(y) -> (coef, intercept) for each tag's boolean column y of labels, on two
    threads; a tag on no row or on every row gets a constant margin instead."""

    def one(tag: int) -> tuple[np.ndarray, float]:
        y = labels[:, tag] > 0.5
        if not y.any():  # LinearSVC needs both classes
            return np.zeros(x.shape[1]), ABSENT_TAG_MARGIN
        if y.all():
            return np.zeros(x.shape[1]), -ABSENT_TAG_MARGIN
        return solve(y)

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


def solve_margin_head(
    net: tf.keras.Model,
    batches,
    c: float,
    char_grams: bool,
    nb_weight: float = 0.0,
    most: int = 0,
    seed: int = 0,
) -> None:
    """Replace the trained net's margin head by the linear SVM of cost c on these
    (inputs, labels) batches (the training split, one pass), mixed with the NB-SVM at
    nb_weight (the module's docstring). most > 0: solved on at most that many rows, a
    uniform sample of the split (design_matrix), so its memory does not grow with it."""
    x, labels = design_matrix(batches, char_grams, most, seed)
    coef, intercept = fit(x, labels, c)
    if nb_weight:
        counted = TERM_SPACE + (CHAR_SPACE if char_grams else 0)
        nb_coef, nb_intercept = fit_nb(x, labels, counted)
        coef = (1 - nb_weight) * coef + nb_weight * nb_coef
        intercept = (1 - nb_weight) * intercept + nb_weight * nb_intercept
    set_margin_head(net, coef, intercept)
