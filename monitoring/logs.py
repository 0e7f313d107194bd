"""The request log, read back: TF Serving's PredictionLog records from the TFRecord files
the app writes (serving/request_log), local or under gs://, in windows of time."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from contract import features


@dataclasses.dataclass
class Logged:
    at: list[int]  # timestamp_secs
    version: list[str]
    label: list[str]
    titles: list[str]
    scores: np.ndarray  # [n, tags]
    predicted: np.ndarray  # [n, tags] bool
    tags: list[str]  # column names (of the first record)

    def take(self, keep: np.ndarray) -> Logged:
        pick = np.flatnonzero(keep)
        return Logged(
            [self.at[i] for i in pick],
            [self.version[i] for i in pick],
            [self.label[i] for i in pick],
            [self.titles[i] for i in pick],
            self.scores[pick],
            self.predicted[pick],
            self.tags,
        )


def log_files(prefix: str) -> list[str]:
    """Finished log files (the writer's staging files start with a dot)."""
    return sorted(tf.io.gfile.glob(f"{prefix.rstrip('/')}/*.tfrecord"))


def read(files: list[str]) -> Logged:
    at, version, label, titles, scores, predicted, tags = [], [], [], [], [], [], []
    for raw in tf.data.TFRecordDataset(files) if files else []:
        record = prediction_log_pb2.PredictionLog.FromString(raw.numpy())
        request, response = record.predict_log.request, record.predict_log.response
        outputs = response.outputs
        at.append(record.log_metadata.timestamp_secs)
        version.append(str(record.log_metadata.model_spec.version.value))
        label.append(request.model_spec.version_label)
        titles.append(request.inputs[features.SERVING_INPUT].string_val[0].decode())
        scores.append(list(outputs[features.OUTPUT_SCORES].float_val))
        predicted.append(list(outputs[features.OUTPUT_PREDICTED].bool_val))
        if not tags:
            tags = [t.decode() for t in outputs[features.OUTPUT_TAGS].string_val]
    width = len(tags)
    return Logged(
        at,
        version,
        label,
        titles,
        np.asarray(scores, np.float32).reshape(-1, width),
        np.asarray(predicted, bool).reshape(-1, width),
        tags,
    )


def windows(logged: Logged, seconds: int) -> list[tuple[int, Logged]]:
    """(window start, its requests), for each window of `seconds` that has any."""
    starts = np.asarray(logged.at, np.int64) // seconds * seconds
    return [(int(s), logged.take(starts == s)) for s in sorted(set(starts.tolist()))]
