"""The Tuner's search runs real trials on the tf.keras network (modules/tuner.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from modules import features, trainer, tuner


def tiny_data(rows: int = 64) -> tf.data.Dataset:
    """Sparse TF-IDF-like inputs in the network's input order, and multi-hot labels."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, size=(rows, 3))  # no 0: from_dense would drop it
    weights = np.full((rows, 3), 0.5, np.float32)
    labels = np.zeros((rows, features.NUM_TAGS), np.float32)
    labels[np.arange(rows), ids[:, 0] % 5] = 1  # learnable: the first term decides the tag

    def sparse(values):
        return tf.sparse.from_dense(tf.constant(values))

    x = dict(zip(features.MODEL_INPUTS, (sparse(ids), sparse(weights)) * 2, strict=True))
    return tf.data.Dataset.from_tensors((x, labels))


def test_every_trial_trains_and_is_scored_by_its_eval_micro_f1(tmp_path):
    hp = {**trainer.DEFAULTS, "hidden_units": 8}
    search = tuner.TfKerasRandomSearch(
        lambda values: trainer.build_model({**hp, **values.values, "hidden_units": 8}),
        hyperparameters=tuner.search_space(),
        objective=tuner.OBJECTIVE,
        max_trials=2,
        seed=1,
        directory=str(tmp_path),
        project_name="t",
    )
    data = tiny_data()
    search.search(x=data, validation_data=data, epochs=2, verbose=0)
    trials = search.oracle.get_best_trials(2)
    assert len(trials) == 2
    assert all(t.status == "COMPLETED" and 0 <= t.score <= 1 for t in trials)
    # Five equally common tags: knowing only their frequencies gives F1 0.2 at best.
    assert trials[0].score > 0.3
    best = search.get_best_hyperparameters()[0].values
    assert set(best) == set(tuner.search_space().values)
