"""The app's HTTP API and web page (aiohttp).

    POST /api/predict  {"title"}                       the tags the model predicts, the next
                                                       candidates, the version that answered
    POST /api/feedback {"title", "predicted", "actual", "model_version"}
                                                       201 once stored durably
    GET  /api/tags                                     the tags the model knows (suggestions)
    GET  /api/review/tags, POST /api/review/tags/{tag}:accept|reject
    GET  /api/health, /api/ready, /api/openapi.json, /metrics, /  (the page)

Every error is {"error": message} with a 4xx for the client's mistakes and 503 when the
model server cannot answer. Every POST must say it is JSON (Content-Type:
application/json, body-less ones included), which a cross-site HTML form cannot send
without the browser asking first, and a POST that a browser marks as cross-site
(Sec-Fetch-Site, or an Origin of another host) is refused with 403. Every response
carries a Content-Security-Policy without inline script, nosniff, frame-ancestors 'none'
and a Referrer-Policy, and a Server header without a version.

Feedback from concurrent requests is committed together (one durable commit per group),
which keeps 201 honest without one fsync per sample.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from pathlib import Path

from aiohttp import web

from serving.app.metrics import AppMetrics
from serving.app.model_client import ModelClient, ModelUnavailableError
from serving.app.openapi import OPENAPI
from serving.feedback.normalize import Feedback, FeedbackError, normalize_title, parse_feedback
from serving.feedback.store import FeedbackStore

MAX_BODY_BYTES = 16 * 1024
CANDIDATES = 5
STATIC = Path(__file__).resolve().parent / "static"
GROUP_COMMIT_MAX = 256


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def read_json(
    request: web.Request, fields: set[str] | None = None, empty_ok: bool = False
) -> dict:
    """The whole body as a JSON object, or ApiError with the status that says what is
    wrong. empty_ok: an empty body (still sent as JSON) is the empty object."""
    if request.content_type != "application/json":
        raise ApiError(415, "send JSON with Content-Type: application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:  # all of it, however many writes it arrives in, up to client_max_size
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes") from None
    if not raw and empty_ok:
        return {}
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ApiError(400, f"the body is not UTF-8 (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ApiError(400, f"the body is not JSON: {err.msg} at {err.pos}") from None
    if not isinstance(document, dict):
        raise ApiError(400, "the body must be a JSON object")
    if fields is not None and set(document) - fields:
        raise ApiError(400, f"unknown fields: {', '.join(sorted(set(document) - fields))}")
    return document


class GroupCommit:
    """Collects feedback from concurrent requests and stores each group in one commit."""

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def add(self, item: Feedback):
        done = asyncio.get_running_loop().create_future()
        await self.queue.put((item, done))
        return await done

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = [await self.queue.get()]
            while not self.queue.empty() and len(group) < GROUP_COMMIT_MAX:
                group.append(self.queue.get_nowait())
            try:
                stored = await loop.run_in_executor(
                    None, self.store.add_many, [item for item, _ in group]
                )
            except Exception as err:  # noqa: BLE001 - every waiting request learns of it
                for _, done in group:
                    done.set_exception(err)
                continue
            for (_, done), result in zip(group, stored, strict=True):
                done.set_result(result)


class Api:
    def __init__(self, store: FeedbackStore, model: ModelClient, metrics: AppMetrics) -> None:
        self.store, self.model, self.metrics = store, model, metrics
        self.writer = GroupCommit(store)

    async def predict(self, request: web.Request) -> web.Response:
        document = await read_json(request, {"title"})
        if "title" not in document:
            raise ApiError(400, "missing field: title")
        try:
            title = normalize_title(document["title"])
        except FeedbackError as err:
            raise ApiError(400, str(err)) from None
        version, row = await self.model.predict(title)
        threshold = row["threshold"]
        # The model's own decision (at least one tag); a model exported before it had one
        # is decided by its threshold alone.
        predicted = row.get("predicted") or [s >= threshold for s in row["scores"]]
        ranked = sorted(zip(row["tags"], row["scores"], predicted, strict=True),
                        key=lambda p: -p[1])  # fmt: skip
        ranked = [r for r in ranked if r[0]]  # unnamed columns never learn
        above = [{"tag": t, "score": s} for t, s, chosen in ranked if chosen]
        below = [{"tag": t, "score": s} for t, s, chosen in ranked if not chosen][:CANDIDATES]
        return web.json_response({"title": title, "tags": above, "candidates": below,
                                  "threshold": threshold, "model_version": version})  # fmt: skip

    async def feedback(self, request: web.Request) -> web.Response:
        document = await read_json(request)
        try:
            item = parse_feedback(document)
        except FeedbackError as err:
            self.metrics.feedback.inc("invalid")
            raise ApiError(400, str(err)) from None
        stored = await self.writer.add(item)
        self.metrics.feedback.inc(stored.status)
        body = {"id": stored.id, "status": stored.status, "actual": list(item.actual)}
        if stored.duplicate_of is not None:
            body["duplicate_of"] = stored.duplicate_of
        if stored.unknown_tags:
            body["review"] = list(stored.unknown_tags)
        return web.json_response(body, status=201)

    async def tags(self, request: web.Request) -> web.Response:
        return web.json_response({"tags": sorted(self.store.known)})

    async def review_queue(self, request: web.Request) -> web.Response:
        queue = await asyncio.get_running_loop().run_in_executor(None, self.store.review_queue)
        return web.json_response({"tags": queue})

    async def review_decide(self, request: web.Request) -> web.Response:
        tag, action = request.match_info["tag"], request.match_info["action"]
        document = await read_json(request, {"alias_of"}, empty_ok=True)
        alias = document.get("alias_of")
        if action not in ("accept", "reject") or (alias is not None and action == "reject"):
            raise ApiError(400, "use :accept (optionally with alias_of) or :reject")
        try:
            changed = await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.store.decide(tag, action == "accept", alias)
            )
        except KeyError:
            raise ApiError(404, f"no tag {tag!r} in the review queue") from None
        except FeedbackError as err:
            raise ApiError(400, str(err)) from None
        return web.json_response({"tag": tag, "decision": action, "samples_released": changed})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def ready(self, request: web.Request) -> web.Response:
        version = await self.model.version(fresh=True)
        return web.json_response({"status": "ready", "model_version": version})

    async def metrics_page(self, request: web.Request) -> web.Response:
        try:
            version = await self.model.version()
        except ModelUnavailableError:
            version = None
        loop = asyncio.get_running_loop()
        quality = None
        if version is not None:
            quality = await loop.run_in_executor(None, self.metrics.quality, version)
        counts = await loop.run_in_executor(None, self.store.counts)
        batches = await loop.run_in_executor(None, self.store.batches)
        return web.Response(text=self.metrics.render(version, quality, counts, batches),
                            content_type="text/plain")  # fmt: skip

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Server": "so-tagger",
}
SAME_SITE = {"same-origin", "none"}  # Sec-Fetch-Site values a browser sends for our page


def cross_site(request: web.Request) -> str | None:
    """Why a state-changing request comes from another site, or None. Clients that are not
    browsers send neither header and are judged by the role they present instead."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in SAME_SITE:
        return f"Sec-Fetch-Site: {fetch_site}"
    origin = request.headers.get("Origin")
    if origin is not None and urllib.parse.urlsplit(origin).netloc != request.host:
        return f"Origin {origin}"
    return None


def build_app(store: FeedbackStore, model: ModelClient, metrics: AppMetrics) -> web.Application:
    api = Api(store, model, metrics)

    @web.middleware
    async def errors(request: web.Request, handler):
        started = time.perf_counter()
        try:
            if request.method == "POST" and (why := cross_site(request)):
                raise ApiError(403, f"cross-site requests cannot change anything here ({why})")
            response = await handler(request)
        except ApiError as err:
            response = _error(err.status, err.message)
        except ModelUnavailableError as err:
            response = _error(503, str(err))
        except web.HTTPException as err:  # aiohttp's own 404 / 405
            response = _error(err.status, err.reason)
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else "other"
        metrics.observe(endpoint, response.status, time.perf_counter() - started)
        return response

    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY_BYTES)

    async def secure(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(SECURITY_HEADERS)

    app.on_response_prepare.append(secure)
    app.router.add_post("/api/predict", api.predict)
    app.router.add_post("/api/feedback", api.feedback)
    app.router.add_get("/api/tags", api.tags)
    app.router.add_get("/api/review/tags", api.review_queue)
    app.router.add_post(r"/api/review/tags/{tag:[^/:]+}:{action}", api.review_decide)
    app.router.add_get("/api/health", api.health)
    app.router.add_get("/api/ready", api.ready)
    app.router.add_get("/api/openapi.json", api.openapi)
    app.router.add_get("/metrics", api.metrics_page)
    app.router.add_get("/", lambda request: web.FileResponse(STATIC / "index.html"))
    app.router.add_static("/static/", STATIC)

    async def start(app: web.Application) -> None:
        api.writer.task = asyncio.create_task(api.writer.run())

    async def stop(app: web.Application) -> None:
        api.writer.task.cancel()
        await model.close()
        store.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app
