"""The app's HTTP API and web page (aiohttp).

    role      endpoint
    anyone    POST /api/predict  {"title"}          the tags the model predicts, the next
                                                    candidates, the version that answered
    anyone    POST /api/feedback {"title", "predicted", "actual", "model_version"}
                                                    201 once stored durably
    anyone    GET  /api/tags                        the tags the model knows (suggestions)
    anyone    GET  /api/whoami                      the caller's role (the page shows the
                                                    review view to reviewers)
    reviewer  GET  /api/review/tags?status=&after=&limit=
                                                    the review queue, one page at a time
    reviewer  POST /api/review/tags/{tag}:accept|reject  {"alias_of"?}
    operator  GET  /api/sources                     sources of feedback, with their counts
    operator  POST /api/sources/{source}:withdraw {"reason"}
                                                    all of one source's samples out of
                                                    training, written spans included
    operator  GET  /api/rollout                     the release: stable, canary, stage,
                                                    every version's status, recent events
    operator  POST /api/rollout:promote {"reason"?} the canary becomes stable now
    operator  POST /api/rollout:rollback {"reason"} the canary is withdrawn and rejected
    anyone    GET  /api/health, /api/ready, /api/openapi.json, /  (the page)

/metrics is served on its own port (`--metrics-port`), for the monitoring network: the
public port does not answer it. Who the caller is comes from serving/app/identity.py; a
role includes the ones above it (serving/feedback/tokens.py). predict and feedback are
rate-limited per source (429 with Retry-After).

Every error is {"error": message}, its status chosen in one place (STATUS_OF): 4xx for
the client's mistakes, 503 when the model server or the store cannot answer. Every POST
must say it is JSON (Content-Type: application/json, body-less ones included), which a
cross-site HTML form cannot send without the browser asking first, and a POST that a
browser marks as cross-site (Sec-Fetch-Site, or an Origin of another host) is refused
with 403. Every response carries a Content-Security-Policy without inline script,
nosniff, frame-ancestors 'none', a Referrer-Policy, HSTS, and a Server header without a
version.

Feedback from concurrent requests is committed together (one durable commit per group),
which keeps 201 honest without one fsync per sample; the queue of waiting requests is
bounded, and a full queue answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from serving.app.identity import Identifier, Identity, KeysUnavailableError, UnauthenticatedError
from serving.app.limits import RateLimiter
from serving.app.metrics import AppMetrics
from serving.app.model_client import ModelClient, ModelUnavailableError
from serving.app.openapi import OPENAPI
from serving.app.traffic import Live, Traffic
from serving.feedback import tokens
from serving.feedback.normalize import Feedback, FeedbackError, normalize_title, parse_feedback
from serving.feedback.store import FeedbackStore, StoreUnavailableError
from serving.request_log.records import prediction_log
from serving.request_log.writer import RequestLog
from serving.rollout.state import CANARY, SHADOW, STABLE, NothingToDoError, Releases

MAX_BODY_BYTES = 16 * 1024
BODY_TIMEOUT_S = 10.0  # a client that has not sent its whole body by then gets 408
CANDIDATES = 5
STATIC = Path(__file__).resolve().parent / "static"
GROUP_COMMIT_MAX = 256  # samples in one commit
GROUP_COMMIT_QUEUE = 2048  # requests waiting for a commit; beyond it, 503
REVIEW_PAGE_MAX = 200
ROLLOUT_EVENTS = 20  # the newest release events /api/rollout lists


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# Each exception the handlers let through, and the HTTP status it is answered with.
STATUS_OF: dict[type[Exception], int] = {
    UnauthenticatedError: 401,
    ModelUnavailableError: 503,
    StoreUnavailableError: 503,
    KeysUnavailableError: 503,
    NothingToDoError: 409,
}


def _error(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


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
        async with asyncio.timeout(BODY_TIMEOUT_S):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes") from None
    except TimeoutError:
        raise ApiError(408, f"the body did not arrive within {BODY_TIMEOUT_S:g} s") from None
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

    def __init__(self, store: FeedbackStore, bound: int = GROUP_COMMIT_QUEUE) -> None:
        self.store = store
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=bound)
        self.task: asyncio.Task | None = None

    async def add(self, item: Feedback):
        done = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((item, done))
        except asyncio.QueueFull:
            raise ApiError(
                503,
                "too much feedback is waiting to be stored; retry shortly",
                {"Retry-After": "1"},
            ) from None
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
                    if not done.done():
                        done.set_exception(err)
                continue
            for (_, done), result in zip(group, stored, strict=True):
                if not done.done():
                    done.set_result(result)


def _blocking(call: Callable, *args):
    return asyncio.get_running_loop().run_in_executor(None, call, *args)


class Api:
    def __init__(
        self,
        store: FeedbackStore,
        model: ModelClient,
        metrics: AppMetrics,
        request_log: RequestLog | None = None,
    ) -> None:
        self.store, self.model, self.metrics = store, model, metrics
        self.writer = GroupCommit(store)
        self.releases = Releases(store, model.model)
        self.traffic = Traffic(model, self.releases)
        self.request_log = request_log
        self._shadows: set[asyncio.Task] = set()

    async def _answer(self, version: str, title: str) -> dict:
        started = time.perf_counter()
        try:
            _, row = await self.model.predict(title, version)
        except ModelUnavailableError:
            self.metrics.model_call(version, "error", time.perf_counter() - started)
            raise
        self.metrics.model_call(version, "ok", time.perf_counter() - started)
        return row

    async def _route_and_answer(self, source: str, title: str) -> tuple[Live, str, str, dict]:
        """(release, label, version, row). A failed canary falls back to stable, and a
        version unloaded since it was cached is looked up again, so label changes cost
        no request."""
        live = await self.traffic.live()
        label, version = live.route(source)
        try:
            return live, label, version, await self._answer(version, title)
        except ModelUnavailableError:
            fresh = await self.traffic.live(fresh=True)
            if label == CANARY or fresh.stable != version:
                return fresh, STABLE, fresh.stable, await self._answer(fresh.stable, title)
            raise

    async def _shadow(self, canary: str, title: str, stable_tags: set[str]) -> None:
        try:
            row = await self._answer(canary, title)
        except ModelUnavailableError:
            return
        agreed = {t["tag"] for t in decided(row)[0]} == stable_tags
        self.metrics.shadow.inc(canary, "true" if agreed else "false")

    async def predict(self, request: web.Request) -> web.Response:
        document = await read_json(request, {"title"})
        if "title" not in document:
            raise ApiError(400, "missing field: title")
        try:
            title = normalize_title(document["title"])
        except FeedbackError as err:
            raise ApiError(400, str(err)) from None
        live, label, version, row = await self._route_and_answer(identity_of(request).source, title)
        above, below = decided(row)
        if live.mode == SHADOW and live.canary and label == STABLE:
            task = asyncio.create_task(self._shadow(live.canary, title, {t["tag"] for t in above}))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)
        if self.request_log is not None and self.request_log.sampled():
            self.request_log.put(
                prediction_log(
                    self.model.model, version, label, title, row, self.request_log.rate, time.time()
                )
            )
        return web.json_response(
            {
                "title": title,
                "tags": above,
                "candidates": below,
                "threshold": row["threshold"],
                "model_version": version,
            }
        )

    def served_version(self, source: str) -> str | None:
        """The version that answers this client now (recorded with its feedback)."""
        live = self.traffic.last()
        return live.route(source)[1] if live else self.model.last_version()

    async def feedback(self, request: web.Request) -> web.Response:
        document = await read_json(request)
        try:
            item = parse_feedback(document)
        except FeedbackError as err:
            self.metrics.feedback.inc("invalid")
            raise ApiError(400, str(err)) from None
        source = identity_of(request).source
        item = dataclasses.replace(item, source=source, served_version=self.served_version(source))
        stored = await self.writer.add(item)
        if stored.refused:
            self.metrics.feedback.inc("refused")
            raise ApiError(429, stored.refused, {"Retry-After": "3600"})
        self.metrics.feedback.inc(stored.status)
        body = {"id": stored.id, "status": stored.status, "actual": list(item.actual)}
        if stored.duplicate_of is not None:
            body["duplicate_of"] = stored.duplicate_of
        if stored.unknown_tags:
            body["review"] = list(stored.unknown_tags)
        return web.json_response(body, status=201)

    async def tags(self, request: web.Request) -> web.Response:
        return web.json_response({"tags": sorted(self.store.known)})

    async def whoami(self, request: web.Request) -> web.Response:
        identity = identity_of(request)
        return web.json_response({"subject": identity.subject, "role": identity.role})

    async def review_queue(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            raise ApiError(400, "limit must be a whole number") from None
        if not 1 <= limit <= REVIEW_PAGE_MAX:
            raise ApiError(400, f"limit must be 1 to {REVIEW_PAGE_MAX}")
        rows, after = await _blocking(
            lambda: self.store.review_queue(query.get("status"), query.get("after"), limit)
        )
        return web.json_response({"tags": rows, "next": after})

    async def review_decide(self, request: web.Request) -> web.Response:
        tag, action = request.match_info["tag"], request.match_info["action"]
        document = await read_json(request, {"alias_of"}, empty_ok=True)
        alias = document.get("alias_of")
        if action not in ("accept", "reject") or (alias is not None and action == "reject"):
            raise ApiError(400, "use :accept (optionally with alias_of) or :reject")
        if alias is not None and not isinstance(alias, str):
            raise ApiError(400, "alias_of must be a tag string")
        who = identity_of(request).subject
        try:
            changed = await _blocking(
                lambda: self.store.decide(tag, action == "accept", alias, by=who)
            )
        except KeyError:
            raise ApiError(404, f"no tag {tag!r} in the review queue") from None
        except FeedbackError as err:
            raise ApiError(400, str(err)) from None
        body = {"tag": tag, "decision": action, "samples_released": changed}
        if action == "accept" and alias is None and tag not in self.store.known:
            # docs/feedback.md: a new tag joins the vocabulary by a reviewed schema change.
            body["awaiting_schema_change"] = True
        return web.json_response(body)

    async def sources(self, request: web.Request) -> web.Response:
        return web.json_response({"sources": await _blocking(self.store.sources)})

    async def withdraw_source(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        document = await read_json(request, {"reason"})
        reason = document.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ApiError(400, "say why in 'reason'")
        who = identity_of(request).subject
        result = await _blocking(lambda: self.store.withdraw_source(source, reason.strip(), who))
        if not result["waiting"] and not result["in_batches"]:
            raise ApiError(404, f"no samples from source {source!r} to withdraw")
        return web.json_response(result)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def ready(self, request: web.Request) -> web.Response:
        await _blocking(self.store.ping)
        version = await self.model.version(fresh=True)
        return web.json_response({"status": "ready", "model_version": version})

    async def rollout_status(self, request: web.Request) -> web.Response:
        release = await _blocking(self.releases.current)
        statuses = await _blocking(self.releases.statuses)
        events = await _blocking(self.releases.events)
        live = self.traffic.last()
        return web.json_response(
            {
                "release": dataclasses.asdict(release),
                "versions": statuses,
                "events": events[-ROLLOUT_EVENTS:],
                "answering": dataclasses.asdict(live) if live else None,
            }
        )

    async def rollout_act(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        document = await read_json(request, {"reason"}, empty_ok=True)
        reason = document.get("reason")
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise ApiError(400, "reason must be a non-empty string")
        who = identity_of(request).subject
        if action == "promote":
            why = reason.strip() if reason else "promoted by an operator"
            release = await _blocking(lambda: self.releases.promote(who, why))
        elif action == "rollback":
            if reason is None:
                raise ApiError(400, "say why in 'reason'")
            release = await _blocking(lambda: self.releases.rollback(who, reason.strip()))
        else:
            raise ApiError(400, "use :promote or :rollback")
        await self.traffic.live(fresh=True)  # this replica follows at once, others in TTL_S
        return web.json_response({"release": dataclasses.asdict(release)})

    async def metrics_page(self, request: web.Request) -> web.Response:
        try:
            live = await self.traffic.live()
        except ModelUnavailableError:
            live = None
        version = live.stable if live else None
        quality = None
        if version is not None:
            quality = await _blocking(self.metrics.quality, version)
        counts = await _blocking(self.store.counts)
        batches = await _blocking(self.store.batches)
        online = await _blocking(self.store.live_quality)
        events = await _blocking(self.releases.event_counts)
        logged = dict(self.request_log.counts) if self.request_log else None
        monitor = await _blocking(self.metrics.monitor_record)
        text = self.metrics.render(
            version,
            quality,
            counts,
            batches,
            live=live,
            online=online,
            events=events,
            logged=logged,
            monitor=monitor,
        )
        return web.Response(text=text, content_type="text/plain")

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    async def page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")


def decided(row: dict) -> tuple[list[dict], list[dict]]:
    """(the tags the model gives, the next candidates) from TF Serving's row. The model's
    own decision (at least one tag); a model exported before it had one is decided by
    its threshold alone. Unnamed columns never learn and are left out."""
    threshold = row["threshold"]
    predicted = row.get("predicted") or [s >= threshold for s in row["scores"]]
    ranked = sorted(zip(row["tags"], row["scores"], predicted, strict=True), key=lambda p: -p[1])
    ranked = [r for r in ranked if r[0]]
    above = [{"tag": t, "score": s} for t, s, chosen in ranked if chosen]
    below = [{"tag": t, "score": s} for t, s, chosen in ranked if not chosen][:CANDIDATES]
    return above, below


def identity_of(request: web.Request) -> Identity:
    return request["identity"]


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Browsers heed it over HTTPS only, which is how the Ingress serves the app.
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
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


def _routes(api: Api) -> list[tuple[str, str, Callable, str | None, str | None]]:
    """(method, path, handler, role needed, rate limit) for every endpoint. Role None:
    probes and the page, which need no identity (no token lookup, no limit)."""
    anyone, reviewer, operator = tokens.ANYONE, tokens.REVIEWER, tokens.OPERATOR
    return [
        ("POST", "/api/predict", api.predict, anyone, "predict"),
        ("POST", "/api/feedback", api.feedback, anyone, "feedback"),
        ("GET", "/api/tags", api.tags, anyone, None),
        ("GET", "/api/whoami", api.whoami, anyone, None),
        ("GET", "/api/review/tags", api.review_queue, reviewer, None),
        ("POST", r"/api/review/tags/{tag:[^/:]+}:{action}", api.review_decide, reviewer, None),
        ("GET", "/api/sources", api.sources, operator, None),
        ("GET", "/api/rollout", api.rollout_status, operator, None),
        ("POST", r"/api/rollout:{action}", api.rollout_act, operator, None),
        ("POST", r"/api/sources/{source:[^/]+}:withdraw", api.withdraw_source, operator, None),
        ("GET", "/api/health", api.health, None, None),
        ("GET", "/api/ready", api.ready, None, None),
        ("GET", "/api/openapi.json", api.openapi, None, None),
        ("GET", "/", api.page, None, None),
    ]


API = web.AppKey("api", Api)  # the app's Api, for the metrics app beside it


def build_app(
    store: FeedbackStore,
    model: ModelClient,
    metrics: AppMetrics,
    identifier: Identifier,
    limits: dict[str, RateLimiter],
    request_log: RequestLog | None = None,
) -> web.Application:
    """The public app. limits: a RateLimiter for "predict" and for "feedback"; request_log:
    where sampled predictions are logged (None: not logged)."""
    api = Api(store, model, metrics, request_log)
    policy: dict[object, tuple[str | None, str | None]] = {}

    async def admit(request: web.Request) -> None:
        """Refuses, with the status that says why, a request this caller may not make."""
        if request.method == "POST" and (why := cross_site(request)):
            raise ApiError(403, f"cross-site requests cannot change anything here ({why})")
        role, limit = policy.get(request.match_info.route, (None, None))
        if role is None:  # no identity needed (or no such endpoint: 404 follows)
            return
        if identifier.blocks(request.headers):
            identity = await _blocking(identifier.identify, request.headers, request.remote)
        else:  # an anonymous caller: one keyed hash, no thread hop
            identity = identifier.identify(request.headers, request.remote)
        request["identity"] = identity
        if not tokens.may(identity.role, role):
            raise ApiError(403, f"this needs the {role} role; you have {identity.role}")
        if limit is not None and (wait := limits[limit].take(identity.source)) is not None:
            raise ApiError(
                429,
                f"too many {limit} requests from this client; retry in {wait:g} s",
                {"Retry-After": f"{wait:g}"},
            )

    @web.middleware
    async def errors(request: web.Request, handler):
        started = time.perf_counter()
        try:
            await admit(request)
            response = await handler(request)
        except ApiError as err:
            response = _error(err.status, err.message, err.headers)
        except tuple(STATUS_OF) as err:
            status = next(s for kind, s in STATUS_OF.items() if isinstance(err, kind))
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            response = _error(status, str(err), headers)
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
    for method, path, handler, role, limit in _routes(api):
        policy[app.router.add_route(method, path, handler)] = (role, limit)
    app.router.add_static("/static/", STATIC)

    async def start(app: web.Application) -> None:
        api.writer.task = asyncio.create_task(api.writer.run())

    async def stop(app: web.Application) -> None:
        api.writer.task.cancel()
        if request_log is not None:
            await _blocking(request_log.close)
        await model.close()
        store.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app[API] = api
    return app


def build_metrics_app(app: web.Application) -> web.Application:
    """/metrics of `app`, to be served on the port the monitoring network reaches."""
    metrics_app = web.Application()
    metrics_app.router.add_get("/metrics", app[API].metrics_page)
    return metrics_app
