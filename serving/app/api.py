"""The app's HTTP API and web page (aiohttp): each endpoint reads, calls one function and
answers. Errors, bodies, admission and headers are the HTTP layer's (http.py); tags come
from the data plane (tagging.py); state from the store.

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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from serving.app import http
from serving.app.group_commit import GroupCommit
from serving.app.http import ApiError, blocking, identity_of, read_json
from serving.app.identity import Identifier
from serving.app.limits import RateLimiter
from serving.app.metrics import AppMetrics
from serving.app.model_client import ModelClient
from serving.app.openapi import OPENAPI
from serving.app.tagging import Tagger
from serving.app.traffic import Live
from serving.feedback import tokens
from serving.request_log.writer import RequestLog
from serving.rollout.state import Releases
from store import releases
from store.database import Database
from store.feedback import REVIEW_PER_SOURCE, FeedbackStore
from store.live_quality import live_quality
from store.retrain import RetrainQueue
from store.review import PAGE_MAX, ReviewQueue
from store.samples import FeedbackError, normalize_title, parse_feedback

STATIC = Path(__file__).resolve().parent / "static"
ROLLOUT_EVENTS = 20  # the newest release events /api/rollout lists


@dataclasses.dataclass
class Parts:
    """What the handlers work with, made once by the app's entry point."""

    db: Database
    known: frozenset[str]
    feedback: FeedbackStore
    review: ReviewQueue
    retrain: RetrainQueue
    releases: Releases
    model: ModelClient
    metrics: AppMetrics
    request_log: RequestLog | None = None

    @classmethod
    def of(
        cls,
        db: Database,
        known: frozenset[str],
        model: ModelClient,
        metrics: AppMetrics,
        request_log: RequestLog | None = None,
        review_per_source: int = REVIEW_PER_SOURCE,
    ) -> Parts:
        return cls(
            db=db,
            known=known,
            feedback=FeedbackStore(db, known, review_per_source),
            review=ReviewQueue(db, known),
            retrain=RetrainQueue(db, known),
            releases=Releases(db, model.model),
            model=model,
            metrics=metrics,
            request_log=request_log,
        )


class Api:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.writer = GroupCommit(parts.feedback)
        self.tagger = Tagger(parts.model, parts.releases, parts.metrics, parts.request_log)

    async def predict(self, request: web.Request) -> web.Response:
        document = await read_json(request, {"title"})
        if "title" not in document:
            raise ApiError(400, "missing field: title")
        title = normalize_title(document["title"])
        answer = await self.tagger.tag(identity_of(request).source, title)
        return web.json_response(
            {
                "title": title,
                "tags": answer.tags,
                "candidates": answer.candidates,
                "threshold": answer.threshold,
                "model_version": answer.version,
            }
        )

    async def feedback(self, request: web.Request) -> web.Response:
        document = await read_json(request)
        try:
            item = parse_feedback(document)
        except FeedbackError:
            self.parts.metrics.feedback.inc("invalid")
            raise
        source = identity_of(request).source
        item = dataclasses.replace(
            item, source=source, served_version=self.tagger.served_version(source)
        )
        stored = await self.writer.add(item)
        if stored.refused:
            self.parts.metrics.feedback.inc("refused")
            raise ApiError(429, stored.refused, {"Retry-After": "3600"})
        self.parts.metrics.feedback.inc(stored.status)
        body = {"id": stored.id, "status": stored.status, "actual": list(item.actual)}
        if stored.duplicate_of is not None:
            body["duplicate_of"] = stored.duplicate_of
        if stored.unknown_tags:
            body["review"] = list(stored.unknown_tags)
        return web.json_response(body, status=201)

    async def tags(self, request: web.Request) -> web.Response:
        return web.json_response({"tags": sorted(self.parts.known)})

    async def whoami(self, request: web.Request) -> web.Response:
        identity = identity_of(request)
        return web.json_response({"subject": identity.subject, "role": identity.role})

    async def review_queue(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            raise ApiError(400, "limit must be a whole number") from None
        if not 1 <= limit <= PAGE_MAX:
            raise ApiError(400, f"limit must be 1 to {PAGE_MAX}")
        page = self.parts.review.page
        rows, after = await blocking(page, query.get("status"), query.get("after"), limit)
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
            changed = await blocking(self.parts.review.decide, tag, action == "accept", alias, who)
        except KeyError:
            raise ApiError(404, f"no tag {tag!r} in the review queue") from None
        body = {"tag": tag, "decision": action, "samples_released": changed}
        if action == "accept" and alias is None and tag not in self.parts.known:
            # A new tag joins the vocabulary by a reviewed schema change, not by a decision.
            body["awaiting_schema_change"] = True
        return web.json_response(body)

    async def sources(self, request: web.Request) -> web.Response:
        return web.json_response({"sources": await blocking(self.parts.feedback.sources)})

    async def withdraw_source(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        reason = (await read_json(request, {"reason"})).get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ApiError(400, "say why in 'reason'")
        who = identity_of(request).subject
        result = await blocking(self.parts.feedback.withdraw_source, source, reason.strip(), who)
        if not result["waiting"] and not result["in_batches"]:
            raise ApiError(404, f"no samples from source {source!r} to withdraw")
        return web.json_response(result)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def ready(self, request: web.Request) -> web.Response:
        await blocking(self.parts.db.ping)
        version = await self.parts.model.version(fresh=True)
        return web.json_response({"status": "ready", "model_version": version})

    async def rollout_status(self, request: web.Request) -> web.Response:
        body = await blocking(self._rollout_status)
        return web.json_response(body)

    def _rollout_status(self) -> dict:
        releases, live = self.parts.releases, self.tagger.traffic.last()
        return {
            "release": dataclasses.asdict(releases.current()),
            "versions": releases.statuses(),
            "events": releases.events()[-ROLLOUT_EVENTS:],
            "answering": dataclasses.asdict(live) if live else None,
        }

    async def rollout_act(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        reason = (await read_json(request, {"reason"}, empty_ok=True)).get("reason")
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise ApiError(400, "reason must be a non-empty string")
        who, releases = identity_of(request).subject, self.parts.releases
        if action == "promote":
            why = reason.strip() if reason else "promoted by an operator"
            release = await blocking(releases.promote, who, why)
        elif action == "rollback":
            if reason is None:
                raise ApiError(400, "say why in 'reason'")
            release = await blocking(releases.rollback, who, reason.strip())
        else:
            raise ApiError(400, "use :promote or :rollback")
        await self.tagger.traffic.live(fresh=True)  # this replica follows at once, others in TTL_S
        return web.json_response({"release": dataclasses.asdict(release)})

    async def metrics_page(self, request: web.Request) -> web.Response:
        live = await self.tagger.live_or_none()
        text = await blocking(self._metrics_text, live)
        return web.Response(text=text, content_type="text/plain")

    def _metrics_text(self, live: Live | None) -> str:
        parts = self.parts
        version = live.stable if live else None
        # Live quality of what answers now and of the versions the release named last.
        served = [v for v in (live.stable, live.canary) if v] if live else []
        versions = served + releases.recent_versions(parts.db, parts.model.model)
        return parts.metrics.render(
            version,
            parts.metrics.quality(version) if version is not None else None,
            parts.feedback.counts(),
            parts.retrain.outcome_counts(),
            live=live,
            online=live_quality(parts.db, versions),
            events=parts.releases.event_counts(),
            logged=dict(parts.request_log.counts) if parts.request_log else None,
            monitor=parts.metrics.monitor_record(),
        )

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    async def page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")


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
    parts: Parts, identifier: Identifier, limits: dict[str, RateLimiter]
) -> web.Application:
    """The public app. limits: a RateLimiter for "predict" and for "feedback"."""
    api = Api(parts)
    gate = http.Gate(identifier, limits)
    app = web.Application(
        middlewares=[http.middleware(gate, parts.metrics.observe)],
        client_max_size=http.MAX_BODY_BYTES,
    )
    app.on_response_prepare.append(http.secure)
    for method, path, handler, role, limit in _routes(api):
        gate.policy[app.router.add_route(method, path, handler)] = (role, limit)
    app.router.add_static("/static/", STATIC)

    async def start(app: web.Application) -> None:
        api.writer.start()

    async def stop(app: web.Application) -> None:
        api.writer.stop()
        if parts.request_log is not None:
            await blocking(parts.request_log.close)
        await parts.model.close()
        parts.db.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app[API] = api
    return app


def build_metrics_app(app: web.Application) -> web.Application:
    """/metrics of `app`, to be served on the port the monitoring network reaches."""
    metrics_app = web.Application()
    metrics_app.router.add_get("/metrics", app[API].metrics_page)
    return metrics_app
