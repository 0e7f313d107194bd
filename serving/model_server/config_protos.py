"""The two TF Serving config messages that tensorflow-serving-api does not ship.

The PyPI package carries model_server_config.proto (ModelServerConfig, version policies,
labels) but not monitoring_config.proto or session_bundle_config.proto. These are built
here from the same package, message, field names, numbers and types as TF Serving's own
.proto files, so `--monitoring_config_file` and `--batching_parameters_file` written for
tensorflow_model_server parse the same way. BatchingParameters carries fields 1-7 of
TF Serving's message; a file using a newer field fails with the parser's own error.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "tensorflow.serving"


def _field(message, name: str, number: int, kind: int, type_name: str = "", repeated=False):
    field = message.field.add(name=name, number=number, type=kind)
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = type_name


def _build() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)

    monitoring = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package=_PACKAGE,
        syntax="proto3",
    )
    prometheus = monitoring.message_type.add(name="PrometheusConfig")
    _field(prometheus, "enable", 1, _F.TYPE_BOOL)
    _field(prometheus, "path", 2, _F.TYPE_STRING)
    config = monitoring.message_type.add(name="MonitoringConfig")
    _field(config, "prometheus_config", 1, _F.TYPE_MESSAGE, f".{_PACKAGE}.PrometheusConfig")
    pool.Add(monitoring)

    batching = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    params = batching.message_type.add(name="BatchingParameters")
    int64 = ".google.protobuf.Int64Value"
    _field(params, "max_batch_size", 1, _F.TYPE_MESSAGE, int64)
    _field(params, "batch_timeout_micros", 2, _F.TYPE_MESSAGE, int64)
    _field(params, "max_enqueued_batches", 3, _F.TYPE_MESSAGE, int64)
    _field(params, "num_batch_threads", 4, _F.TYPE_MESSAGE, int64)
    _field(params, "thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue")
    _field(params, "allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True)
    _field(params, "pad_variable_length_inputs", 7, _F.TYPE_BOOL)
    pool.Add(batching)
    return pool


_POOL = _build()
MonitoringConfig = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.MonitoringConfig")
)
BatchingParameters = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.BatchingParameters")
)
