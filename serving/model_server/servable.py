"""One loaded version of one model: its signatures, how to call them, how to warm it up."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving.model_server.errors import Code, ServingError, invalid_argument

SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit
# Rows per model call when a large request runs unbatched: small enough that a passed
# deadline stops the work soon, large enough that slicing costs nothing measurable.
CHUNK_ROWS = 1024
log = logging.getLogger(__name__)


def read_meta_graph(path: Path) -> meta_graph_pb2.MetaGraphDef:
    """The 'serve' MetaGraphDef of a SavedModel directory (what TF Serving loads)."""
    saved_model = saved_model_pb2.SavedModel()
    if (path / "saved_model.pb").exists():
        saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    elif (path / "saved_model.pbtxt").exists():
        text_format.Parse((path / "saved_model.pbtxt").read_text(), saved_model)
    else:
        raise ServingError(
            Code.NOT_FOUND,
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}",
        )
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ServingError(
        Code.NOT_FOUND,
        f"Could not find meta graph def matching supplied tags: {{ {SERVE_TAG} }}. To inspect "
        "available tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`",
    )


class Servable:
    """A SavedModel version, loaded. Safe to call from many threads at once."""

    def __init__(self, name: str, version: int, path: Path) -> None:
        self.name, self.version, self.path = name, version, path
        self.meta_graph = read_meta_graph(path)
        self.signature_defs = dict(self.meta_graph.signature_def)
        self._loaded = tf.saved_model.load(str(path), tags=[SERVE_TAG])
        self._functions = dict(self._loaded.signatures)

    def _signature(self, signature: str) -> str:
        """The signature a request names ("" is serving_default), or INVALID_ARGUMENT."""
        name = signature or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        return name

    def input_dtypes(self, signature: str) -> dict[str, int]:
        inputs = self.signature_defs[self._signature(signature)].inputs
        return {key: info.dtype for key, info in inputs.items()}

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Every signature with inputs has a function; callers resolved inputs first.
        function = self._functions[self._signature(signature)]
        try:
            outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        except tf.errors.OpError as e:
            raise ServingError(Code(e.error_code), e.message) from None
        except (TypeError, ValueError) as e:  # the arguments do not fit the signature
            raise invalid_argument(str(e)) from None
        return {key: value.numpy() for key, value in outputs.items()}

    def run_until(
        self,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        stop: threading.Event,
        chunk_rows: int = CHUNK_ROWS,
    ) -> dict[str, np.ndarray]:
        """run(), in slices of chunk_rows rows, giving up between slices once `stop` is
        set: a request whose deadline has passed stops costing CPU and memory after at
        most one slice (a TensorFlow call itself cannot be interrupted). Inputs without
        one common batch dimension, and models whose outputs are not one row per input
        row, are run whole."""
        rows = {value.shape[0] if value.ndim else None for value in inputs.values()}
        if len(rows) != 1 or None in rows or next(iter(rows)) <= chunk_rows:
            return self.run(signature, inputs)
        total = rows.pop()
        parts = []
        for start in range(0, total, chunk_rows):
            if stop.is_set():
                raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded")
            part = self.run(
                signature, {k: v[start : start + chunk_rows] for k, v in inputs.items()}
            )
            expected = min(chunk_rows, total - start)
            if any(v.ndim == 0 or v.shape[0] != expected for v in part.values()):
                return self.run(signature, inputs)  # not row-wise: only whole is right
            parts.append(part)
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def warm_up(self) -> None:
        """Calls the model before it takes traffic, so no client pays for the first call.

        Replays assets.extra/tf_serving_warmup_requests when the model ships one (as TF
        Serving does); otherwise calls each signature once on a one-row input of zeros or
        empty strings and ignores what a made-up input cannot satisfy.
        """
        warmup = self.path / WARMUP_FILE
        if warmup.exists():
            for record in tf.data.TFRecordDataset(str(warmup)).take(MAX_WARMUP_RECORDS):
                entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
                request = entry.predict_log.request
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                self.run(request.model_spec.signature_name, inputs)
            return
        for name, signature in self.signature_defs.items():
            if name.startswith("__") or name not in self._functions:
                continue
            inputs = {}
            for key, info in signature.inputs.items():
                dims = [1 if d.size < 0 else d.size for d in info.tensor_shape.dim]
                dtype = tf.dtypes.as_dtype(info.dtype)
                if info.tensor_shape.unknown_rank:
                    dims = [1]
                inputs[key] = np.zeros(dims, dtype=dtype.as_numpy_dtype)
                if dtype == tf.string:
                    inputs[key] = np.full(dims, b"", dtype=object)
            try:
                self.run(name, inputs)
            except ServingError as e:
                log.info(
                    "warm-up of %s/%d:%s skipped: %s",
                    self.name,
                    self.version,
                    name,
                    str(e).splitlines()[0],
                )
