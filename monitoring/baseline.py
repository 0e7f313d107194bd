"""What training looked like to the model: a sample of the training spans' titles, with
the outputs the served version gives them, described as the windows are."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from contract import features, serving_layout
from ingest import spans
from monitoring.features import describe, vocabulary

SAMPLE = 5000
BATCH = 256


def span_titles(spans_dir: Path) -> list[str]:
    """Every title of every span (ExampleGen's input), in span order."""
    files = [str(spans.span_dir(spans_dir, n) / spans.DATA_FILE)
             for n in spans.existing_spans(spans_dir)]  # fmt: skip
    spec = {features.TITLE: tf.io.FixedLenFeature([], tf.string)}
    titles = []
    for raw in tf.data.TFRecordDataset(files).batch(1024):
        parsed = tf.io.parse_example(raw, spec)[features.TITLE].numpy()
        titles += [t.decode() for t in parsed]
    return titles


def sample(titles: list[str], size: int = SAMPLE, seed: int = 0) -> list[str]:
    return random.Random(seed).sample(titles, min(size, len(titles)))


def newest_version(base_path: Path) -> Path:
    versions = [p for p in base_path.iterdir() if serving_layout.version_number(p.name) is not None]
    return max(versions, key=lambda p: int(p.name))


def model_outputs(model_dir: Path, titles: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(scores, predicted, tag names) of the SavedModel's serving signature, as served."""
    serve = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    scores, predicted, tags = [], [], []
    for start in range(0, len(titles), BATCH):
        out = serve(**{features.SERVING_INPUT: tf.constant(titles[start : start + BATCH])})
        scores.append(out[features.OUTPUT_SCORES].numpy())
        predicted.append(out[features.OUTPUT_PREDICTED].numpy())
        tags = [t.decode() for t in out[features.OUTPUT_TAGS].numpy()[0]]
    return np.concatenate(scores), np.concatenate(predicted), tags


def described(model_dir: Path, titles: list[str]) -> pd.DataFrame:
    scores, predicted, tags = model_outputs(model_dir, titles)
    return describe(titles, scores, predicted, tags, vocabulary(model_dir))
