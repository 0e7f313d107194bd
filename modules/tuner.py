"""Tuner's tuner_fn: a KerasTuner search over the network and the features it reads.

The search space is trainer.HYPERPARAMETERS: width, depth, dropout, learning rate,
whether the wide part reads the character n-grams, how much faster it learns, each
head's L2 penalty on it, and how much of the NB-SVM the margin head mixes in. Each trial
trains as the Trainer does (trainer.training_data: same data, same early stopping), and
trials are ranked by the micro F1 of their decisions on the eval split, at the threshold
the Trainer would choose for them: what the model is judged on. (Ranked by validation
loss, a full-data search picked values that tagged worse.) The best values reach the
Trainer through the Tuner's best_hyperparameters artifact; committed to
hyperparameters/<setting>/, they become what every untuned run of that setting trains
with.
"""

from __future__ import annotations

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from modules import threshold, trainer

OBJECTIVE = keras_tuner.Objective("val_micro_f1", "max")


class TfKerasRandomSearch(keras_tuner.RandomSearch):
    """RandomSearch whose trials build and fit the network themselves.

    KerasTuner 1.4 finds Keras 3 installed and insists that a trial's model is a Keras 3
    Model (and wraps the fit in Keras 3 callbacks); the network is tf.keras (tf_keras,
    TF_USE_LEGACY_KERAS=1), as TFX's Trainer needs. So each trial builds the model, fits
    it as the Trainer does (fit: trainer.fit, with the Trainer's arguments; early stopping
    restores its best epoch), finishes it as the Trainer does (finish:
    trainer.solve_margin_head) and reports OBJECTIVE on the validation data.
    """

    def __init__(self, hypermodel, fit, finish, **kwargs) -> None:
        super().__init__(hypermodel, **kwargs)
        self.fit = fit  # (model, trial's HyperParameters, **fit arguments) -> None
        self.finish = finish  # (model, trial's HyperParameters) -> None

    def run_trial(self, trial, **kwargs) -> float:
        tf.keras.backend.clear_session()
        model = self.hypermodel.build(trial.hyperparameters)
        self.fit(model, trial.hyperparameters, **kwargs)
        self.finish(model, trial.hyperparameters)
        labels, scores = trainer.eval_arrays(model, kwargs["validation_data"])
        _, micro_f1 = threshold.choose(labels, scores)
        return micro_f1


def search_space() -> keras_tuner.HyperParameters:
    """Where the Tuner searches. No defaults are set: the values untuned runs train with
    are the reviewed file's, and random search samples every trial."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("hidden_units", [256, 512, 1024])
    hp.Int("depth", 1, 2)
    hp.Choice("dropout", [0.3, 0.5])
    hp.Choice("learning_rate", [3e-4, 1e-3, 3e-3])
    hp.Boolean("char_grams")
    hp.Choice("wide_step_scale", [1.0, 10.0, 30.0])
    hp.Choice("probability_wide_l2", [0.0, 1e-7, 3e-7])
    hp.Choice("margin_wide_l2", [0.0, 1e-6, 3e-6])
    hp.Choice("margin_nb_weight", [0.0, 0.3, 0.5, 0.7])
    return hp


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    hp = trainer.settings(fn_args)  # trainer.TRAINING and the pipeline's custom config
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)  # what the Tuner sets
    train, _, fit_args = trainer.training_data(fn_args, tft_output, hp)
    inputs = trainer.input_names(tft_output)

    rows = trainer.training_rows(fn_args, tft_output, hp)

    def build(values: keras_tuner.HyperParameters):
        return trainer.build_model({**hp, **values.values}, inputs)

    def fit(model, values: keras_tuner.HyperParameters, x, **fit_args) -> None:
        trainer.fit(model, x, {**hp, **values.values}, **fit_args)

    def finish(model, values: keras_tuner.HyperParameters) -> None:
        trainer.solve_margin_head(model, rows, {**hp, **values.values})

    tuner = TfKerasRandomSearch(
        build,
        fit,
        finish,
        hyperparameters=search_space(),
        objective=OBJECTIVE,
        max_trials=int(hp["max_trials"]),  # create_pipeline(tuning=...) sets it
        seed=hp["seed"],
        directory=fn_args.working_dir,
        project_name="tagger",
    )
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={"x": train, **fit_args})
