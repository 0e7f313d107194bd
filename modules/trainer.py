"""Trainer's run_fn: train the tagger on Transform's output and export it for serving.

Exported signatures:
  serving_default     title (string [batch]) -> scores, tags, threshold, predicted
                      (see contract/features.py; predicted is modules/threshold.py's rule)
  serving_examples    serialized tf.Example -> scores, decision_scores (used by TFMA)
  transform_features  serialized tf.Example -> Transform's outputs, label included (TFMA)
"""

from __future__ import annotations

import contextlib
import json
import logging

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from contract import features
from modules import linear_svm, model, threshold, warm_start

# How the network is trained. The hyperparameters (HYPERPARAMETERS: the network's own and
# the margin head's mix) are not here: they come from the Tuner when the pipeline tunes,
# else from the reviewed file of the setting
# (hyperparameters/<setting>/best_hyperparameters.txt), which the pipeline imports as the
# Trainer's hyperparameters; that file is the one place they live.
# Precedence: custom_config (runner flags) > hyperparameters > TRAINING.
TRAINING = {
    "batch_size": 256,
    "epochs": 30,
    "patience": 3,
    # Cost C of the linear SVM that replaces the trained margin head (modules/linear_svm.py);
    # 0 keeps the margin head the network trained. 0.1 is the best C of the TF-IDF linear
    # SVM baseline (bench/quality.py).
    "margin_svm_c": 0.1,
    # The SVM is solved on at most this many training rows, a uniform sample of a larger
    # split: liblinear holds its rows in memory, several copies over, so without a bound
    # the Trainer's memory grows with the data (docs/scale.md measures what the bound
    # costs); 0: no bound.
    "margin_svm_rows": 100_000,
    "seed": 42,
    # With the pipeline's warm start on (create_pipeline(warm_start=True)), training
    # begins from the latest blessed model and needs only a few epochs.
    "warm_start": False,
    "warm_start_epochs": 4,
    "warm_start_patience": 1,
}


# What the reviewed file of each setting holds and the Tuner searches: the network's
# hyperparameters, then how the margin head's SVM is mixed (modules/linear_svm.py).
HYPERPARAMETERS = model.HYPERPARAMETERS + linear_svm.HYPERPARAMETERS


def settings(fn_args) -> dict:
    """TRAINING, overridden by the hyperparameters (tuned or reviewed), overridden by
    custom_config."""
    given = (fn_args.hyperparameters or {}).get("values", {})
    return {**TRAINING, **given, **(fn_args.custom_config or {})}


def input_names(tft_output) -> tuple[str, ...]:
    """What the network reads: MODEL_INPUTS, then the embedding when Transform made one
    (the encoder setting: `--encoder`, configs.PREPROCESSING_FN_WITH_ENCODER)."""
    made = tft_output.transformed_feature_spec()
    return features.MODEL_INPUTS + ((features.EMBEDDING,) if features.EMBEDDING in made else ())


def build_model(hp: dict, inputs: tuple[str, ...] = features.MODEL_INPUTS) -> tf.keras.Model:
    """The network for these settings, reading these inputs (input_names())."""
    missing = [name for name in HYPERPARAMETERS if name not in hp]
    if missing:
        raise ValueError(
            f"no value for {', '.join(missing)}: give the Trainer the reviewed "
            "hyperparameters file (hyperparameters/<setting>/best_hyperparameters.txt)"
        )
    width = features.EMBEDDING_WIDTH if features.EMBEDDING in inputs else 0
    return model.build(**{name: hp[name] for name in model.HYPERPARAMETERS}, embedding_width=width)


JUST_ABOVE_HALF = float(np.nextafter(np.float32(0.5), np.float32(1)))


def dataset(fn_args, files, tft_output, hp: dict, shuffle: bool, repeat: bool):
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=hp["batch_size"],
            label_key=features.LABEL,
            shuffle=shuffle,
            shuffle_seed=hp["seed"],
            num_epochs=None if repeat else 1,
        ),
        tft_output.transformed_metadata.schema,
    )


def _tag_names(tft_output) -> list[str]:
    """Tag names in score order. Columns beyond the training vocabulary (only when the
    training data held fewer than NUM_TAGS tags) are named "" and never learn a positive."""
    names = [t.decode() for t in tft_output.vocabulary_by_name(features.TAG_VOCAB)]
    return names + [""] * (features.NUM_TAGS - len(names))


def _signatures(keras_model, tft_output, tag_names: list[str], decision_threshold: float):
    keras_model.tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != features.TAGS}
    names = tf.constant(tag_names)
    named = tf.constant([bool(n) for n in tag_names])
    thr = tf.constant(decision_threshold, tf.float32)
    # logit(threshold): subtracting it centres the decision point on 0.5 for TFMA.
    thr_logit = tf.constant(
        float(np.log(decision_threshold / (1 - decision_threshold))), tf.float32
    )

    inputs = input_names(tft_output)

    def predict(raw: dict) -> tf.Tensor:
        transformed = keras_model.tft_layer(raw)
        return model.scores(keras_model({k: transformed[k] for k in inputs}))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.SERVING_INPUT)])
    def serve_titles(title):
        scores = predict({features.TITLE: tf.reshape(title, [-1, 1])})
        batch = tf.shape(scores)[0]
        return {
            features.OUTPUT_SCORES: scores,
            features.OUTPUT_TAGS: tf.tile(names[tf.newaxis, :], [batch, 1]),
            features.OUTPUT_THRESHOLD: tf.fill([batch], thr),
            features.OUTPUT_PREDICTED: threshold.decide(scores, thr, named),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        scores = predict(tf.io.parse_example(examples, serving_spec))
        logits = tf.math.log(scores) - tf.math.log1p(-scores)
        centred = tf.sigmoid(logits - thr_logit)
        # TFMA decides at 0.5: every predicted tag is lifted just above it (so `>` and `>=`
        # agree), and TFMA's F1 and exact match score the at-least-one-tag rule itself.
        # Ranking metrics barely move: only a row's top tag, when below the threshold.
        predicted = threshold.decide(scores, thr, named)
        return {
            features.OUTPUT_SCORES: scores,
            features.OUTPUT_DECISION_SCORES: tf.where(
                predicted, tf.maximum(centred, JUST_ABOVE_HALF), centred
            ),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples):
        return keras_model.tft_layer(tf.io.parse_example(examples, raw_spec))

    return {
        "serving_default": serve_titles,
        features.EVAL_SIGNATURE: serve_examples,
        features.TRANSFORM_SIGNATURE: transform_features,
    }


def export(net, tft_output, decision_threshold: float, export_dir: str) -> None:
    """Save net with Transform's graph and the decision threshold as the serving model."""
    signatures = _signatures(net, tft_output, _tag_names(tft_output), decision_threshold)
    # Without the optimizer's slots: a third of the size, and nothing reads them.
    net.save(export_dir, save_format="tf", signatures=signatures, include_optimizer=False)


def training_data(fn_args, tft_output, hp: dict) -> tuple:
    """(train, eval, Keras fit arguments), shared by the Trainer and the Tuner.

    Without train_steps an epoch is one full pass over the train split; with them (small
    test runs) the data repeats and the steps are spread over the epochs.
    """
    steps = fn_args.train_steps
    epochs = max(1, min(hp["epochs"], steps)) if steps else hp["epochs"]
    train = dataset(fn_args, fn_args.train_files, tft_output, hp, shuffle=True, repeat=bool(steps))
    evaluation = dataset(fn_args, fn_args.eval_files, tft_output, hp, shuffle=False, repeat=False)
    fit_args = {
        "steps_per_epoch": max(1, steps // epochs) if steps else None,
        "epochs": epochs,
        "validation_data": evaluation,
        "validation_steps": fn_args.eval_steps,
        "callbacks": [
            tf.keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=hp["patience"], restore_best_weights=True
            )
        ],
    }
    return train, evaluation, fit_args


def training_rows(fn_args, tft_output, hp: dict):
    """The train split once, in order: what solve_margin_head() fits the SVM on."""
    return dataset(fn_args, fn_args.train_files, tft_output, hp, shuffle=False, repeat=False)


def fit(net, train, hp: dict, **fit_args) -> None:
    """net.fit(train, **fit_args); while the SVM is to replace the margin head after
    (solve_margin_head()), that head's wide parts stay idle (model.margin_wide_idle)."""
    idle = model.margin_wide_idle(net) if hp["margin_svm_c"] else contextlib.nullcontext()
    with idle:
        net.fit(train, **fit_args)


def solve_margin_head(net, rows, hp: dict) -> None:
    """After fit: the margin head becomes the linear SVM of cost hp["margin_svm_c"] on
    rows (training_rows()), mixed with the NB-SVM at hp["margin_nb_weight"], unless the
    cost is 0. The Trainer and each Tuner trial call it."""
    if hp["margin_svm_c"]:
        linear_svm.solve_margin_head(
            net,
            rows,
            hp["margin_svm_c"],
            hp["char_grams"],
            hp["margin_nb_weight"],
            most=hp["margin_svm_rows"],
            seed=hp["seed"],
        )


def eval_arrays(keras_model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores as served) over a whole dataset of (inputs, labels) batches."""
    labels, scores = [], []
    for x, y in dataset:
        labels.append(y.numpy())
        scores.append(model.scores(keras_model(x, training=False)).numpy())
    return np.concatenate(labels), np.concatenate(scores)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    hp = settings(fn_args)
    tf.keras.utils.set_random_seed(hp["seed"])
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    net = build_model(hp, input_names(tft_output))
    warm = hp["warm_start"] and fn_args.base_model
    if warm:
        why_not = warm_start.load(net, fn_args.base_model, warm_start.vocabularies(tft_output))
        if why_not:
            logging.warning("warm start skipped, training from scratch: %s", why_not)
            warm = False
    if warm:
        hp["epochs"], hp["patience"] = hp["warm_start_epochs"], hp["warm_start_patience"]
    train, evaluation, fit_args = training_data(fn_args, tft_output, hp)
    fit(net, train, hp, **fit_args, verbose=2)
    solve_margin_head(net, training_rows(fn_args, tft_output, hp), hp)

    labels, scores = eval_arrays(net, evaluation)
    named = [bool(n) for n in _tag_names(tft_output)]
    decision_threshold, eval_f1 = threshold.choose(labels, scores, named)
    logging.info(
        "decision threshold %.2f (micro F1 %.4f on the eval split)", decision_threshold, eval_f1
    )

    export(net, tft_output, decision_threshold, fn_args.serving_model_dir)
    tf.io.gfile.makedirs(fn_args.model_run_dir)  # no runner promises it exists
    with tf.io.gfile.GFile(f"{fn_args.model_run_dir}/training_summary.json", "w") as f:
        summary = {"threshold": decision_threshold, "eval_micro_f1": eval_f1, **hp}
        summary["warm_started_from"] = fn_args.base_model if warm else None
        f.write(json.dumps(summary))
