"""The app's only way to the model: TF Serving's REST API, at a configurable URL.

Works the same against the real tensorflow_model_server and serving/model_server. The
newest AVAILABLE version is read from the status endpoint (cached for a second) and
every prediction names the version it asks, so an answer always says which gave it.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from contract import serving_api

STATUS_TTL_SECONDS = 1.0


class ModelUnavailableError(Exception):
    """The model server cannot answer; the message says why (for a 503)."""


class ModelClient:
    def __init__(self, base_url: str, model: str, timeout_seconds: float = 5.0) -> None:
        self.base, self.model = base_url.rstrip("/"), model
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._version: tuple[float, str] | None = None

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """(HTTP status, JSON document) of one call; ModelUnavailableError when the
        server does not answer with JSON at all."""
        session = await self._http()
        try:
            async with session.request(method, f"{self.base}{path}", json=body) as reply:
                return reply.status, await reply.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as err:
            raise ModelUnavailableError(
                f"model server at {self.base} did not answer: {type(err).__name__} {err}"
            ) from None

    async def _ok(self, method: str, path: str, body: dict | None = None) -> dict:
        status, document = await self._call(method, path, body)
        if status != 200:
            error = document.get("error", "") if isinstance(document, dict) else document
            raise ModelUnavailableError(f"model server answered {status}: {error}")
        return document

    def last_version(self) -> str | None:
        """The version last seen serving, however old, without asking (None: never seen)."""
        return self._version[1] if self._version else None

    async def version(self, fresh: bool = False) -> str:
        """The newest AVAILABLE version of the model."""
        if not fresh and self._version and time.monotonic() - self._version[0] < STATUS_TTL_SECONDS:
            return self._version[1]
        available = serving_api.available_versions(
            await self._ok("GET", serving_api.status_path(self.model))
        )
        if not available:
            raise ModelUnavailableError(f"model {self.model} has no AVAILABLE version")
        newest = max(available, key=int)
        self._version = (time.monotonic(), newest)
        return newest

    async def label_version(self, label: str) -> str | None:
        """The version a label names, or None when the label is not set. A label whose
        version is not AVAILABLE raises ModelUnavailableError: it must not be taken for
        "no label", which would send the label's traffic to the newest version."""
        status, document = await self._call("GET", serving_api.status_path(self.model, label=label))
        if status in (400, 404):  # TF Serving: "Unrecognized servable version label"
            return None
        if status != 200:
            raise ModelUnavailableError(f"model server answered {status}: {document}")
        available = serving_api.available_versions(document)
        if not available:
            raise ModelUnavailableError(f"the version labelled {label} is not AVAILABLE")
        return available[0]

    async def predict(self, title: str, version: str) -> dict:
        """The row TF Serving answered for the title: scores, tags, threshold, predicted."""
        reply = await self._ok(
            "POST", serving_api.predict_path(self.model, version), {"instances": [title]}
        )
        return reply["predictions"][0]
