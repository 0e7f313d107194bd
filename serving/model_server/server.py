"""The model server's process: parse the command line, load the models, serve REST.

Started by `python -m serving.model_server` (`__main__.py`), which sets TensorFlow's
process-wide switches before TensorFlow is imported.
"""

from __future__ import annotations

import logging
import sys

import tensorflow as tf
import uvloop
from aiohttp import web

from serving.model_server import config
from serving.model_server.app import build_app
from serving.model_server.metrics import ServerMetrics
from serving.model_server.versions import ModelManager

# Seconds in-flight requests get to finish after SIGTERM/SIGINT before sockets are closed.
SHUTDOWN_GRACE_SECONDS = 30


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        options = config.options(argv)
    except config.ConfigError as e:
        print(f"model_server: error: {e}", file=sys.stderr)
        return 1
    # Before any model loads: TensorFlow fixes its thread pools on first use.
    if options.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(options.intra_op_threads)
    if options.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(options.inter_op_threads)
    metrics = ServerMetrics()
    manager = ModelManager(
        options.models, metrics.record_load, options.allow_labels_for_unavailable
    )
    # Like TF Serving, load what is there before opening the port, and refuse a config
    # whose labels name versions that did not load, unless told to allow it.
    manager.poll()
    problems = manager.unavailable_labels()
    if problems and not options.allow_labels_for_unavailable:
        print(f"model_server: error: {problems[0]}", file=sys.stderr)
        return 1
    app = build_app(options, manager, metrics)
    web.run_app(
        app,
        loop=uvloop.new_event_loop(),  # faster than asyncio's own (bench/serving_speed.py)
        host=options.rest_api_host,
        port=options.rest_api_port,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        access_log=None,
        print=lambda _: print(
            f"Exporting HTTP/REST API at:{options.rest_api_host}:{options.rest_api_port} ...",
            flush=True,
        ),
    )
    return 0
