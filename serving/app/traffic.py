"""Which version answers a client: stable, or the canary for a share of clients.

The versions come from TF Serving's labels (`GET /v1/models/<m>/labels/<label>`), so the
app follows whatever the model config says; the mode and share come from the release
state in the store (serving/rollout/state.py). Both are cached for TTL_S. Without a
`stable` label (a server run on a base path alone) the newest AVAILABLE version answers,
as before releases existed.

A client's share is decided by a keyed hash of its source, so one client sees one
version for the whole stage, and a larger share keeps the clients a smaller one had.
In shadow mode stable answers everyone and the canary is asked too, for comparison.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time

from serving.app.model_client import ModelClient, ModelUnavailableError
from serving.rollout.state import CANARY, STABLE, Release, Releases

TTL_S = 1.0
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Live:
    stable: str
    canary: str | None = None  # labelled and AVAILABLE, else None
    mode: str = STABLE
    share: float = 0.0

    def route(self, source: str) -> tuple[str, str]:
        """(label, version) that answers this client."""
        if self.canary and self.mode == CANARY and bucket(source) < self.share:
            return CANARY, self.canary
        return STABLE, self.stable


def bucket(source: str) -> float:
    """A client's place in [0, 1): the same for every replica and every stage."""
    digest = hashlib.sha256(b"canary:" + source.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Traffic:
    def __init__(self, model: ModelClient, releases: Releases) -> None:
        self.model, self.releases = model, releases
        self._live: tuple[float, Live] | None = None
        self._lock = asyncio.Lock()

    async def live(self, fresh: bool = False) -> Live:
        if not fresh and self._live and time.monotonic() - self._live[0] < TTL_S:
            return self._live[1]
        async with self._lock:
            if not fresh and self._live and time.monotonic() - self._live[0] < TTL_S:
                return self._live[1]
            stable = await self.model.label_version(STABLE)
            if stable is None:
                live = Live(await self.model.version(fresh=True))
            else:
                release = await self._release()
                canary = await self._canary() if release.canary else None
                live = Live(stable, canary, release.mode, release.share)
            self._live = (time.monotonic(), live)
            return live

    async def _canary(self) -> str | None:
        """The canary's version, or None while it is not labelled or not loaded."""
        try:
            return await self.model.label_version(CANARY)
        except ModelUnavailableError:
            return None

    async def _release(self) -> Release:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self.releases.current)
        except Exception:  # noqa: BLE001 - the store is down: everyone gets stable
            log.warning("release state unreadable; serving stable only", exc_info=True)
            return Release()

    def last(self) -> Live | None:
        return self._live[1] if self._live else None
