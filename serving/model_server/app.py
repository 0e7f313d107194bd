"""The REST front end: TF Serving's endpoints on aiohttp, model calls off the event loop.

Why aiohttp: a mature asyncio HTTP/1.1 server with keep-alive, streaming bodies with a
size limit, graceful shutdown that lets in-flight requests finish, and no framework
routing to fight (TF Serving routes by its own case-insensitive patterns, see routing).
It is already in the lock for the web app. Model calls, the JSON encoding of their
outputs (once per batch with batching on) and large-body decoding run on thread pools,
so the loop keeps accepting and answering.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from aiohttp import web
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

from serving.model_server import json_codec, routing, signatures
from serving.model_server.batching import BatchScheduler
from serving.model_server.config import ConfigError, Options, read_model_config
from serving.model_server.errors import Code, ServingError, invalid_argument
from serving.model_server.metrics import ServerMetrics
from serving.model_server.request_logging import RequestLoggers, record
from serving.model_server.servable import Servable
from serving.model_server.versions import ModelManager

JSON = "application/json"
DECODE_OFF_LOOP_BYTES = 1 << 20  # bodies larger than this are parsed on a worker thread
log = logging.getLogger(__name__)


def _proto_json(message, **kwargs) -> dict:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True, **kwargs)


class RestApi:
    def __init__(self, options: Options, manager: ModelManager, metrics: ServerMetrics) -> None:
        self.options, self.manager, self.metrics = options, manager, metrics
        self.requests = ThreadPoolExecutor(options.rest_api_num_threads, "rest_api")
        self.batcher = (
            BatchScheduler(
                options.batching, json_codec.predict_responses, on_batch=self._record_batch
            )
            if options.batching is not None
            else None
        )
        self.timeout = options.timeout_ms / 1000 if options.timeout_ms > 0 else None
        self.loggers = RequestLoggers(options.request_log_seconds)
        self.loggers.configure(options.models)

    def _record_batch(self, model: str, rows: int) -> None:
        self.metrics.batch_size.observe(rows, model)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        if self.options.metrics_path and path == self.options.metrics_path:
            return web.Response(text=self.metrics.render(), content_type="text/plain")
        if not routing.API_PREFIX.fullmatch(path):
            return web.Response(status=404, text="Not Found")
        started = time.perf_counter()
        route = None
        try:
            route = routing.parse(request.method, path)
            body = await self._read_body(request) if request.method == "POST" else b""
            payload = await self._dispatch(route, body)
            status, code = 200, Code.OK
        except ServingError as e:
            payload = json_codec.to_text({"error": e.message}).encode()
            status, code = e.http_status, e.code
        except Exception as e:  # noqa: BLE001 - a bug still answers in TF Serving's form
            log.exception("request %s %s failed", request.method, path)
            payload = json_codec.to_text({"error": f"{type(e).__name__}: {e}"}).encode()
            status, code = 500, Code.INTERNAL
        # Labels only for the models this server serves: a name any client can make up
        # must not add a series (the metrics page would grow with every new name).
        served = route is not None and route.model in self.manager.models
        if served and route.api in ("predict", "classify", "regress"):
            self.metrics.record_request(
                route.model, route.api, code.name, time.perf_counter() - started
            )
        return web.Response(body=payload, status=status, content_type=JSON)

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.options.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _too_large(request.content_length, limit)
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as e:
            raise _too_large(e.actual_size, limit) from None

    async def _dispatch(self, route: routing.Route, body: bytes) -> bytes:
        if route.api == "status":
            response = self.manager.status(route.model, route.version, route.label)
            return json_codec.to_text(_proto_json(response)).encode()
        if route.api == "metadata":
            return self._metadata(self.manager.servable(route.model, route.version, route.label))
        if len(body) > DECODE_OFF_LOOP_BYTES:
            doc = await asyncio.get_running_loop().run_in_executor(
                self.requests, json_codec.parse_document, body
            )
        else:
            doc = json_codec.parse_document(body)
        signature = json_codec.signature_name(doc)
        if route.api != "predict":
            signatures.check_examples(doc)
            servable = self.manager.servable(route.model, route.version, route.label)
            signatures.refuse_classify_regress(route.api, servable, signature)
        servable = self.manager.servable(route.model, route.version, route.label)
        fmt, inputs = json_codec.predict_inputs(doc, servable.input_dtypes(signature))
        self._check_rows(inputs)
        answer = await self._predict(servable, signature, inputs, fmt)
        if (request_log := self.loggers.sampled(route.model)) is not None:
            at = time.time()
            self.requests.submit(
                lambda: request_log.put(
                    record(servable, signature, inputs, answer, route.label, request_log.rate, at)
                )
            )
        return answer

    def _check_rows(self, inputs: dict[str, np.ndarray]) -> None:
        """This server's bound on rows per unbatched request (--rest_api_max_rows). TF
        Serving has none without batching; with batching on, the scheduler's
        max_batch_size is the bound, in TF Serving's words (batching.py)."""
        limit = self.options.max_rows
        rows = max((v.shape[0] for v in inputs.values() if v.ndim), default=0)
        if limit and rows > limit and self.batcher is None:
            raise invalid_argument(
                f"Request has {rows} rows, more than this server's limit of {limit} "
                "(--rest_api_max_rows)"
            )

    async def _predict(
        self,
        servable: Servable,
        signature: str,
        inputs: dict[str, np.ndarray],
        fmt: json_codec.Format,
    ) -> bytes:
        """The model call and the JSON answer, both on a worker thread. A passed deadline
        stops the work too: a batch whose requests have all given up is not run, and an
        unbatched call stops between slices of its rows (Servable.run_until)."""
        stop = threading.Event()
        if self.batcher is not None:
            call = self.batcher.run(servable, signature, inputs, fmt)
        else:
            call = asyncio.get_running_loop().run_in_executor(
                self.requests,
                lambda: json_codec.predict_response(
                    servable.run_until(signature, inputs, stop), fmt
                ),
            )
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            stop.set()
            raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    def _metadata(self, servable: Servable) -> bytes:
        spec = model_pb2.ModelSpec(name=servable.name)
        spec.version.value = servable.version
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in servable.signature_defs.items():
            signatures.signature_def[name].CopyFrom(signature)
        payload = {
            "model_spec": _proto_json(spec, preserving_proto_field_name=True),
            "metadata": {
                "signature_def": _proto_json(signatures, preserving_proto_field_name=True)
            },
        }
        return json_codec.to_text(payload).encode()

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self.batcher is not None:
            await loop.run_in_executor(None, self.batcher.close)
        await loop.run_in_executor(None, self.requests.shutdown)
        await loop.run_in_executor(None, self.loggers.close)


def _too_large(size: int, limit: int) -> ServingError:
    # TF Serving reads any body; a limit is this server's addition, answered as HTTP does.
    return ServingError(
        Code.RESOURCE_EXHAUSTED,
        f"Request body of {size} bytes exceeds the limit of {limit} bytes",
        http_status=413,
    )


def build_app(options: Options, manager: ModelManager, metrics: ServerMetrics) -> web.Application:
    api = RestApi(options, manager, metrics)
    app = web.Application(client_max_size=options.max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", api.handle)

    async def poll_forever() -> None:
        loop = asyncio.get_running_loop()
        loader = ThreadPoolExecutor(1, "version_loader")
        try:
            while True:
                await asyncio.sleep(options.poll_wait_seconds)
                await loop.run_in_executor(loader, manager.poll)
        finally:
            loader.shutdown(wait=False, cancel_futures=True)

    async def reread_config_forever() -> None:
        """--model_config_file_poll_wait_seconds: the file is read again, and a file
        that does not parse leaves the running config as it is, as in TF Serving."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(options.config_poll_seconds)
            try:
                models = await loop.run_in_executor(
                    None, read_model_config, options.model_config_file
                )
            except ConfigError as e:
                log.error("keeping the running model config: %s", e)
                continue
            manager.reconfigure(models)
            api.loggers.configure(models)

    async def start_polling(app: web.Application) -> None:
        if options.poll_wait_seconds > 0:
            app["poller"] = asyncio.get_running_loop().create_task(poll_forever())
        if options.model_config_file and options.config_poll_seconds > 0:
            app["config_poller"] = asyncio.get_running_loop().create_task(reread_config_forever())

    async def stop(app: web.Application) -> None:
        for task in ("poller", "config_poller"):
            if task in app:
                app[task].cancel()
        await api.close()

    app.on_startup.append(start_polling)
    app.on_cleanup.append(stop)
    return app
