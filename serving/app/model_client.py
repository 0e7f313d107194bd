"""The app's only way to the model: TF Serving's REST API, at a configurable URL.

Works the same against the real tensorflow_model_server and serving/model_server. The
newest AVAILABLE version is read from the status endpoint (cached for a second) and
predictions name that version, so an answer always says which version gave it.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

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

    async def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        session = await self._http()
        try:
            async with session.request(method, f"{self.base}{path}", json=body) as reply:
                document = await reply.json(content_type=None)
                if reply.status != 200:
                    raise ModelUnavailableError(
                        f"model server answered {reply.status}: {document.get('error', '')}"
                    )
                return document
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as err:
            raise ModelUnavailableError(
                f"model server at {self.base} did not answer: {type(err).__name__} {err}"
            ) from None

    def last_version(self) -> str | None:
        """The version last seen serving, however old, without asking (None: never seen)."""
        return self._version[1] if self._version else None

    async def version(self, fresh: bool = False) -> str:
        """The newest AVAILABLE version of the model."""
        if not fresh and self._version and time.monotonic() - self._version[0] < STATUS_TTL_SECONDS:
            return self._version[1]
        status = await self._call("GET", f"/v1/models/{self.model}")
        available = [
            s["version"]
            for s in status.get("model_version_status", [])
            if s.get("state") == "AVAILABLE"
        ]
        if not available:
            raise ModelUnavailableError(f"model {self.model} has no AVAILABLE version")
        newest = max(available, key=int)
        self._version = (time.monotonic(), newest)
        return newest

    async def label_version(self, label: str) -> str | None:
        """The version a label names, or None when the label is not set. A label whose
        version is not AVAILABLE raises ModelUnavailableError: it must not be taken for
        "no label", which would send the label's traffic to the newest version."""
        session = await self._http()
        url = f"{self.base}/v1/models/{self.model}/labels/{label}"
        try:
            async with session.get(url) as reply:
                document = await reply.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as err:
            raise ModelUnavailableError(
                f"model server at {self.base} did not answer: {type(err).__name__} {err}"
            ) from None
        if reply.status in (400, 404):  # TF Serving: "Unrecognized servable version label"
            return None
        if reply.status != 200:
            raise ModelUnavailableError(f"model server answered {reply.status}: {document}")
        states = document.get("model_version_status", [])
        found = next((s["version"] for s in states if s.get("state") == "AVAILABLE"), None)
        if found is None:
            raise ModelUnavailableError(f"the version labelled {label} is not AVAILABLE")
        return found

    async def predict(self, title: str, version: str | None = None) -> tuple[str, dict]:
        """(version, the row TF Serving answered: scores, tags, threshold). Without a
        version: the newest AVAILABLE one."""
        if version is not None:
            reply = await self._call(
                "POST",
                f"/v1/models/{self.model}/versions/{version}:predict",
                {"instances": [title]},
            )
            return version, reply["predictions"][0]
        for fresh in (False, True):  # a cached version may have been unloaded since
            version = await self.version(fresh=fresh)
            try:
                reply = await self._call(
                    "POST",
                    f"/v1/models/{self.model}/versions/{version}:predict",
                    {"instances": [title]},
                )
                return version, reply["predictions"][0]
            except ModelUnavailableError:
                if fresh:
                    raise
        raise AssertionError("unreachable")
