"""The app's data plane: a title's tags, from the version that answers its client.

Which version that is comes from the release (traffic.py): stable, or the canary for a
share of clients. A failed canary call falls back to stable, and a version unloaded
since it was cached is looked up again, so label changes cost no request. In shadow
mode stable answers and the canary is asked too, off the request's path, to count how
often the two agree. A sampled share of answers goes to the request log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from serving.app.metrics import AppMetrics
from serving.app.model_client import ModelClient, ModelUnavailableError
from serving.app.traffic import Live, Traffic
from serving.request_log.records import prediction_log
from serving.request_log.writer import RequestLog
from serving.rollout.state import CANARY, SHADOW, STABLE, Releases

CANDIDATES = 5  # tags below the decision shown as candidates


@dataclasses.dataclass(frozen=True)
class Answer:
    tags: list[dict]  # the tags the model gives: [{"tag", "score"}], at least one
    candidates: list[dict]  # the next ones below the decision
    threshold: float
    version: str


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


class Tagger:
    def __init__(
        self,
        model: ModelClient,
        releases: Releases,
        metrics: AppMetrics,
        request_log: RequestLog | None = None,
    ) -> None:
        self.model, self.metrics, self.request_log = model, metrics, request_log
        self.traffic = Traffic(model, releases)
        self._shadows: set[asyncio.Task] = set()

    async def tag(self, source: str, title: str) -> Answer:
        live, label, version, row = await self._route_and_answer(source, title)
        above, below = decided(row)
        if live.mode == SHADOW and live.canary and label == STABLE:
            task = asyncio.create_task(self._shadow(live.canary, title, {t["tag"] for t in above}))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)
        log = self.request_log
        if log is not None and log.sampled():
            at = time.time()
            log.put(prediction_log(self.model.model, version, label, title, row, log.rate, at))
        return Answer(above, below, row["threshold"], version)

    def served_version(self, source: str) -> str | None:
        """The version that answers this client now (recorded with its feedback)."""
        live = self.traffic.last()
        return live.route(source)[1] if live else self.model.last_version()

    async def live_or_none(self) -> Live | None:
        """The release as the model server has it, or None while it cannot say."""
        try:
            return await self.traffic.live()
        except ModelUnavailableError:
            return None

    async def _call(self, version: str, title: str) -> dict:
        started = time.perf_counter()
        try:
            row = await self.model.predict(title, version)
        except ModelUnavailableError:
            self.metrics.model_call(version, "error", time.perf_counter() - started)
            raise
        self.metrics.model_call(version, "ok", time.perf_counter() - started)
        return row

    async def _route_and_answer(self, source: str, title: str) -> tuple[Live, str, str, dict]:
        """(release, label, version, row)."""
        live = await self.traffic.live()
        label, version = live.route(source)
        try:
            return live, label, version, await self._call(version, title)
        except ModelUnavailableError:
            fresh = await self.traffic.live(fresh=True)
            if label == CANARY or fresh.stable != version:
                return fresh, STABLE, fresh.stable, await self._call(fresh.stable, title)
            raise

    async def _shadow(self, canary: str, title: str, stable_tags: set[str]) -> None:
        try:
            row = await self._call(canary, title)
        except ModelUnavailableError:
            return
        agreed = {t["tag"] for t in decided(row)[0]} == stable_tags
        self.metrics.shadow.inc(canary, "true" if agreed else "false")
