"""TF Serving's request logger: `logging_config` in a model's entry of the model config.

    logging_config {
      log_collector_config { type: "" filename_prefix: "/var/log/tagger/prediction_log" }
      sampling_config { sampling_rate: 0.1 }
    }

A sampled predict request and its answer become one PredictionLog record (TF Serving's
own classes) in TFRecord files named from filename_prefix, written by the same writer as
the app's log (serving/request_log/writer.py). The stock tensorflow_model_server has no
log collector linked in and refuses such a config, so production configs never carry
one; here it lets the local stand-in log as a TF Serving build with a collector would.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.model_server.servable import DEFAULT_SIGNATURE, Servable
from serving.request_log.records import describe
from serving.request_log.writer import RequestLog


class RequestLoggers:
    """One RequestLog per model whose config asks for one; replaced when its config
    changes (the config file can be re-read while serving)."""

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self._logs: dict[str, tuple[bytes, RequestLog]] = {}

    def configure(self, models: list[model_server_config_pb2.ModelConfig]) -> None:
        wanted = {
            m.name: m.logging_config.SerializeToString(deterministic=True)
            for m in models
            if m.HasField("logging_config")
        }
        for name in list(self._logs):
            if self._logs[name][0] != wanted.get(name):
                self._logs.pop(name)[1].close()
        for model in models:
            if model.name in wanted and model.name not in self._logs:
                config = model.logging_config
                prefix = config.log_collector_config.filename_prefix
                log = RequestLog(
                    os.path.dirname(prefix) or ".",
                    rate=config.sampling_config.sampling_rate,
                    max_seconds=self.max_seconds,
                    name=os.path.basename(prefix) or "prediction_log",
                )
                self._logs[model.name] = (wanted[model.name], log)

    def sampled(self, model: str) -> RequestLog | None:
        """The model's log when this request is to be logged, else None."""
        entry = self._logs.get(model)
        return entry[1] if entry is not None and entry[1].sampled() else None

    def close(self) -> None:
        for _, log in self._logs.values():
            log.close()
        self._logs = {}


def record(
    servable: Servable,
    signature: str,
    inputs: dict[str, np.ndarray],
    answer: bytes,
    label: str | None,
    rate: float,
    at: float,
) -> bytes:
    """The PredictionLog of one answered predict request (answer: the JSON body sent)."""
    name = signature or DEFAULT_SIGNATURE
    entry = prediction_log_pb2.PredictionLog()
    describe(entry, servable.name, name, servable.version, label, rate, at)
    request, response = entry.predict_log.request, entry.predict_log.response
    for key, array in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
    document = json.loads(answer)
    outputs_def = servable.signature_defs[name].outputs
    if "predictions" in document:
        rows = document["predictions"]
        if len(outputs_def) == 1:
            columns = {next(iter(outputs_def)): rows}
        else:
            columns = {key: [row[key] for row in rows] for key in outputs_def}
    else:
        columns = document["outputs"]
        if not isinstance(columns, dict):
            columns = {next(iter(outputs_def)): columns}
    for key, values in columns.items():
        dtype = tf.dtypes.as_dtype(outputs_def[key].dtype)
        if dtype == tf.string:
            values = np.asarray(values, dtype=object)
        response.outputs[key].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
    return entry.SerializeToString()
