"""Command line and config files, as tensorflow_model_server takes them.

The flags keep TF Serving's names and defaults; the config files are text-format protos
parsed into TF Serving's own messages (ModelServerConfig from tensorflow-serving-api,
the other two from config_protos). Any problem is one sentence, raised as ConfigError.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from google.protobuf import message, text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.model_server.config_protos import BatchingParameters, MonitoringConfig

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


class ConfigError(Exception):
    pass


@dataclasses.dataclass
class Options:
    rest_api_host: str
    rest_api_port: int
    models: list[model_server_config_pb2.ModelConfig]
    model_config_file: str  # "" when the model came from --model_base_path
    config_poll_seconds: float  # 0: the config file is read once, as in TF Serving
    request_log_seconds: float
    poll_wait_seconds: float
    timeout_ms: int
    batching: BatchingParameters | None  # None: batching off
    metrics_path: str | None  # None: Prometheus endpoint off, as in TF Serving
    max_body_bytes: int
    max_rows: int  # 0: no bound, as in TF Serving without batching
    rest_api_num_threads: int
    allow_labels_for_unavailable: bool
    intra_op_threads: int  # 0: TensorFlow's default
    inter_op_threads: int


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m serving.model_server",
        description="TF Serving's REST API for SavedModels on one machine.",
    )
    flag = p.add_argument
    flag("--port", type=int, default=8500, help="gRPC port of tensorflow_model_server; not served")
    flag("--rest_api_port", type=int, default=0, help="port of the REST API (required)")
    flag(
        "--rest_api_host",
        default="0.0.0.0",
        help="address to listen on (an addition; TF Serving listens on all interfaces)",
    )
    flag("--rest_api_num_threads", type=int, default=os.cpu_count() or 1)
    flag("--rest_api_timeout_in_ms", type=int, default=30000)
    flag("--model_name", default="default")
    flag("--model_base_path", default="")
    flag("--model_config_file", default="")
    flag("--model_config_file_poll_wait_seconds", type=float, default=0.0)
    flag(
        "--request_log_max_seconds",
        type=float,
        default=60.0,
        help="a logging_config's file is closed this long after its first record (an "
        "addition: TF Serving's collectors decide for themselves)",
    )
    flag("--file_system_poll_wait_seconds", type=float, default=1.0)
    flag("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    flag("--batching_parameters_file", default="")
    flag("--monitoring_config_file", default="")
    flag(
        "--allow_version_labels_for_unavailable_models",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
    )
    flag("--tensorflow_intra_op_parallelism", type=int, default=0)
    flag("--tensorflow_inter_op_parallelism", type=int, default=0)
    flag(
        "--rest_api_max_body_bytes",
        type=int,
        default=64 << 20,
        help="larger request bodies get 413 (an addition: TF Serving has no such limit)",
    )
    flag(
        "--rest_api_max_rows",
        type=int,
        default=10_000,
        help="unbatched requests with more rows get 400 INVALID_ARGUMENT (an addition: "
        "TF Serving runs any number; with batching on, max_batch_size is the bound, as in "
        "TF Serving); 0: no bound",
    )
    return p


def _read_text_proto(path: str, proto: message.Message, flag: str) -> message.Message:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{flag}: cannot read {path}: {e.strerror}") from None
    try:
        return text_format.Parse(text, proto)
    except text_format.ParseError as e:
        raise ConfigError(f"{flag}: {path} is not a valid {proto.DESCRIPTOR.name}: {e}") from None


def read_model_config(path: str) -> list[model_server_config_pb2.ModelConfig]:
    """The models of a --model_config_file, checked as TF Serving checks them."""
    server_config = _read_text_proto(
        path, model_server_config_pb2.ModelServerConfig(), "--model_config_file"
    )
    models = list(server_config.model_config_list.config)
    if not models:
        raise ConfigError(f"--model_config_file: {path} lists no model")
    check_models(models)
    return models


def check_models(models: list[model_server_config_pb2.ModelConfig]) -> None:
    names = [m.name for m in models]
    for model in models:
        if not model.name or not model.base_path:
            raise ConfigError(f"every model needs a name and a base_path (got {names})")
        if model.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"model {model.name}: platform {model.model_platform!r} unsupported")
        sampling = model.logging_config.sampling_config.sampling_rate
        if model.HasField("logging_config") and not 0 < sampling <= 1:
            raise ConfigError(f"model {model.name}: logging sampling_rate must be in (0, 1]")
        collector = model.logging_config.log_collector_config
        if model.HasField("logging_config") and not collector.filename_prefix:
            raise ConfigError(f"model {model.name}: logging needs a filename_prefix")
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be unique (got {names})")


def options(argv: list[str] | None = None) -> Options:
    args = parser().parse_args(argv)
    if args.rest_api_port <= 0:
        raise ConfigError("--rest_api_port is required: this server speaks TF Serving's REST API")

    if args.model_config_file:
        models = read_model_config(args.model_config_file)
    elif args.model_base_path:
        models = [
            model_server_config_pb2.ModelConfig(
                name=args.model_name, base_path=args.model_base_path, model_platform="tensorflow"
            )
        ]
        check_models(models)
    else:
        raise ConfigError("give --model_base_path (one model) or --model_config_file")

    batching = None
    if args.enable_batching:
        batching = BatchingParameters()
        if args.batching_parameters_file:
            _read_text_proto(args.batching_parameters_file, batching, "--batching_parameters_file")

    metrics_path = None
    if args.monitoring_config_file:
        monitoring = _read_text_proto(
            args.monitoring_config_file, MonitoringConfig(), "--monitoring_config_file"
        )
        if monitoring.prometheus_config.enable:
            metrics_path = monitoring.prometheus_config.path or DEFAULT_PROMETHEUS_PATH

    return Options(
        rest_api_host=args.rest_api_host,
        rest_api_port=args.rest_api_port,
        models=models,
        model_config_file=args.model_config_file,
        config_poll_seconds=max(0.0, args.model_config_file_poll_wait_seconds),
        request_log_seconds=max(0.01, args.request_log_max_seconds),
        poll_wait_seconds=args.file_system_poll_wait_seconds,
        timeout_ms=args.rest_api_timeout_in_ms,
        batching=batching,
        metrics_path=metrics_path,
        max_body_bytes=args.rest_api_max_body_bytes,
        max_rows=max(0, args.rest_api_max_rows),
        rest_api_num_threads=max(1, args.rest_api_num_threads),
        allow_labels_for_unavailable=args.allow_version_labels_for_unavailable_models,
        intra_op_threads=max(0, args.tensorflow_intra_op_parallelism),
        inter_op_threads=max(0, args.tensorflow_inter_op_parallelism),
    )
