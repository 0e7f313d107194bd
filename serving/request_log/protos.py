"""TF Serving's PredictionLog and the messages it holds, without TensorFlow.

Why not a package: tensorflow-serving-api depends on TensorFlow, which the app's image
does not carry, and the proto-only `tensorflow-protobuf` (2.11.0, the newest on PyPI)
does not import: its logging_pb2 needs tensorflow_serving.config.logging_config_pb2,
which it does not ship, and it installs a top-level `tensorflow` package that is not
TensorFlow. So the descriptors are generated from the pinned tensorflow-serving-api
(export_protos.py) into prediction_log.binpb, 37 KB, and the classes are built from it
here in a pool of their own, with the protobuf runtime the app already has. Same
package, names and field numbers as TF Serving's, so its own classes read the records.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from serving.request_log import DESCRIPTORS


def _classes(*names: str) -> list[type]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return [message_factory.GetMessageClass(pool.FindMessageTypeByName(n)) for n in names]


PredictionLog, TensorProto = _classes("tensorflow.serving.PredictionLog", "tensorflow.TensorProto")

# tensorflow/core/framework/types.proto
DT_FLOAT, DT_STRING, DT_BOOL = 1, 7, 10
