"""The Tuner's search runs real trials on the tf.keras network (modules/tuner.py)."""

from __future__ import annotations

import json

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from contract import features, paths
from modules import trainer, tuner
from tests.hyperparameters import network


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
    hp = {**trainer.TRAINING, **network(hidden_units=8)}
    data = tiny_data()
    finished = []

    def finish(model, values):  # as tuner_fn's: the Trainer's own last step
        trainer.solve_margin_head(model, data, {**hp, **values.values})
        finished.append(float(np.abs(model.get_layer("margin_deep").kernel.numpy()).sum()))

    def fit(model, values, x, **fit_args):  # as tuner_fn's: the Trainer's own fit
        trainer.fit(model, x, {**hp, **values.values}, **fit_args)

    search = tuner.TfKerasRandomSearch(
        lambda values: trainer.build_model({**hp, **values.values, "hidden_units": 8}),
        fit,
        finish,
        hyperparameters=tuner.search_space(),
        objective=tuner.OBJECTIVE,
        max_trials=2,
        seed=1,
        directory=str(tmp_path),
        project_name="t",
    )
    search.search(x=data, validation_data=data, epochs=2, verbose=0)
    trials = search.oracle.get_best_trials(2)
    assert len(trials) == 2
    assert all(t.status == "COMPLETED" and 0 <= t.score <= 1 for t in trials)
    # Five equally common tags: knowing only their frequencies gives F1 0.2 at best.
    assert trials[0].score > 0.3
    assert finished == [0.0, 0.0]  # each trial was scored with its margin head solved
    best = search.get_best_hyperparameters()[0].values
    assert set(best) == set(tuner.search_space().values)


def allowed(searched, value) -> bool:
    if isinstance(searched, keras_tuner.engine.hyperparameters.Boolean):
        return isinstance(value, bool)
    if isinstance(searched, keras_tuner.engine.hyperparameters.Int):
        return searched.min_value <= value <= searched.max_value
    return value in searched.values


@pytest.mark.parametrize("encoder", [False, True], ids=["default", "encoder"])
def test_each_settings_reviewed_values_are_a_point_of_the_search_space(encoder):
    reviewed = json.loads(paths.hyperparameters_file(encoder).read_text())
    values = reviewed["values"]
    assert set(values) == set(trainer.HYPERPARAMETERS)
    searched = {hp.name: hp for hp in tuner.search_space().space}
    assert all(allowed(searched[name], value) for name, value in values.items()), values
    # What the Tuner writes and the Trainer reads: it loads as HyperParameters, unchanged.
    assert keras_tuner.HyperParameters.from_config(reviewed).values == values
