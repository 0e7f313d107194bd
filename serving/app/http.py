"""The app's HTTP layer: the one place an error becomes a status, bodies are read, callers
are admitted, and every response gets its security headers.

Every error is {"error": message}. Its status is chosen here, in STATUS_OF, for each
kind of exception the handlers let through: 4xx for the client's mistakes, 503 when the
model server or the store cannot answer. Every POST must say it is JSON (Content-Type:
application/json, body-less ones included), which a cross-site HTML form cannot send
without the browser asking first, and a POST that a browser marks as cross-site
(Sec-Fetch-Site, or an Origin of another host) is refused with 403. Every response
carries a Content-Security-Policy without inline script, nosniff, frame-ancestors
'none', a Referrer-Policy, HSTS, and a Server header without a version. A method an
endpoint does not take gets 405 with the Allow header HTTP requires.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable

from aiohttp import web

from serving.app.identity import Identifier, Identity, KeysUnavailableError, UnauthenticatedError
from serving.app.limits import RateLimiter
from serving.app.model_client import ModelUnavailableError
from serving.feedback import tokens
from serving.rollout.state import NothingToDoError
from store.database import StoreUnavailableError
from store.samples import FeedbackError

MAX_BODY_BYTES = 16 * 1024
BODY_TIMEOUT_S = 10.0  # a client that has not sent its whole body by then gets 408


class ApiError(Exception):
    """A refusal with its own status (and headers, such as Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# Each exception the handlers let through, and the HTTP status it is answered with.
STATUS_OF: dict[type[Exception], int] = {
    FeedbackError: 400,
    UnauthenticatedError: 401,
    NothingToDoError: 409,
    ModelUnavailableError: 503,
    StoreUnavailableError: 503,
    KeysUnavailableError: 503,
}
# Sent with every 503: how soon a client may try again.
RETRY_AFTER_S = "1"

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

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def blocking(call: Callable, *args) -> asyncio.Future:
    """call(*args) on a worker thread, so the event loop keeps answering."""
    return asyncio.get_running_loop().run_in_executor(None, call, *args)


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


def identity_of(request: web.Request) -> Identity:
    """Who is calling (set when the request was admitted)."""
    return request["identity"]


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


def _answer(err: Exception) -> web.Response:
    """The response for an exception a handler let through."""
    if isinstance(err, ApiError):
        return error_response(err.status, err.message, err.headers)
    if isinstance(err, web.HTTPException):  # aiohttp's own 404 and 405
        headers = {"Allow": err.headers["Allow"]} if "Allow" in err.headers else None
        return error_response(err.status, err.reason, headers)
    status = next(s for kind, s in STATUS_OF.items() if isinstance(err, kind))
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif status == 503:
        headers = {"Retry-After": RETRY_AFTER_S}
    return error_response(status, str(err), headers)


class Gate:
    """Admits each request by its endpoint's policy: the role it needs and the rate
    limit it counts against (serving/app/api.py lists both)."""

    def __init__(self, identifier: Identifier, limits: dict[str, RateLimiter]) -> None:
        self.identifier, self.limits = identifier, limits
        self.policy: dict[object, tuple[str | None, str | None]] = {}

    async def admit(self, request: web.Request) -> None:
        """Refuses, with the status that says why, a request this caller may not make."""
        if request.method == "POST" and (why := cross_site(request)):
            raise ApiError(403, f"cross-site requests cannot change anything here ({why})")
        role, limit = self.policy.get(request.match_info.route, (None, None))
        if role is None:  # no identity needed (or no such endpoint: 404 follows)
            return
        identifier = self.identifier
        if identifier.blocks(request.headers):
            identity = await blocking(identifier.identify, request.headers, request.remote)
        else:  # an anonymous caller: one keyed hash, no thread hop
            identity = identifier.identify(request.headers, request.remote)
        request["identity"] = identity
        if not tokens.may(identity.role, role):
            raise ApiError(403, f"this needs the {role} role; you have {identity.role}")
        if limit is not None and (wait := self.limits[limit].take(identity.source)) is not None:
            raise ApiError(
                429,
                f"too many {limit} requests from this client; retry in {wait:g} s",
                {"Retry-After": f"{wait:g}"},
            )


def middleware(gate: Gate, observe: Callable[[str, int, float], None]):
    """Admission, errors as statuses, and each request's latency by endpoint."""

    @web.middleware
    async def handle(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            await gate.admit(request)
            response = await handler(request)
        except (ApiError, web.HTTPException, *STATUS_OF) as err:
            response = _answer(err)
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else "other"
        observe(endpoint, response.status, time.perf_counter() - started)
        return response

    return handle


async def secure(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the security headers, on every response."""
    response.headers.update(SECURITY_HEADERS)
