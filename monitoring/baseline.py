"""What training looked like to the model: a sample of the training spans' titles, with
the outputs the served version gives them, described as the windows are."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd
import tensorflow as tf

from contract import features, serving_layout
from ingest import spans
from monitoring.features import describe, vocabulary

SAMPLE = 5000
BATCH = 256


def span_titles(spans_dir: str) -> list[str]:
    """Every title of every span (ExampleGen's input), in span order; local or gs://."""
    pattern = f"{spans_dir.rstrip('/')}/{spans.SPAN_DIR_FORMAT.format(span='*')}/{spans.DATA_FILE}"
    files = sorted(
        tf.io.gfile.glob(pattern), key=lambda f: int(re.search(r"span-(\d+)/[^/]+$", f).group(1))
    )
    spec = {features.TITLE: tf.io.FixedLenFeature([], tf.string)}
    titles = []
    for raw in tf.data.TFRecordDataset(files).batch(1024):
        parsed = tf.io.parse_example(raw, spec)[features.TITLE].numpy()
        titles += [t.decode() for t in parsed]
    return titles


def sample(titles: list[str], size: int = SAMPLE, seed: int = 0) -> list[str]:
    return random.Random(seed).sample(titles, min(size, len(titles)))


def newest_version(base_path: str) -> str:
    """The newest version directory under a TF Serving base path (local or gs://)."""
    found = serving_layout.versions(tf.io.gfile.listdir(base_path))
    return f"{base_path.rstrip('/')}/{found[max(found)]}"


def model_outputs(model_dir: str, titles: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(scores, predicted, tag names) of the SavedModel's serving signature, as served."""
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    scores, predicted, tags = [], [], []
    for start in range(0, len(titles), BATCH):
        out = serve(**{features.SERVING_INPUT: tf.constant(titles[start : start + BATCH])})
        scores.append(out[features.OUTPUT_SCORES].numpy())
        predicted.append(out[features.OUTPUT_PREDICTED].numpy())
        tags = [t.decode() for t in out[features.OUTPUT_TAGS].numpy()[0]]
    return np.concatenate(scores), np.concatenate(predicted), tags


def described(model_dir: str, titles: list[str]) -> pd.DataFrame:
    scores, predicted, tags = model_outputs(model_dir, titles)
    return describe(titles, scores, predicted, tags, vocabulary(model_dir))
