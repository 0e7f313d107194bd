"""Per-source rate limits: a token bucket for each source and kind of request.

A bucket holds up to `burst` requests and refills at `rate` per second; a request that
finds it empty is refused with the seconds until one is back (HTTP 429, Retry-After).
Buckets live in the app process: with N replicas a source gets up to N times the rate,
which is why the retrain batch also caps each source's share (store/retrain.py).
The table is bounded; the sources idle longest are forgotten first (a forgotten source
starts again with a full bucket, which costs it nothing it could not get by waiting).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time


@dataclasses.dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int


class RateLimiter:
    def __init__(self, rate: Rate, max_sources: int = 100_000, clock=time.monotonic) -> None:
        self.rate, self.max_sources, self.clock = rate, max_sources, clock
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def take(self, source: str) -> float | None:
        """None when the request may go ahead; else the seconds to wait (rounded up)."""
        now = self.clock()
        tokens, then = self._buckets.pop(source, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - then) * self.rate.per_second)
        wait = None
        if tokens >= 1:
            tokens -= 1
        else:
            wait = float(math.ceil((1 - tokens) / self.rate.per_second))
        self._buckets[source] = (tokens, now)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        return wait
