"""What the rollout controller judges a canary on, gathered over HTTP: the app replicas'
/metrics (model calls, their latency and shadow agreement, by version) and the model
server's status (which versions are AVAILABLE). The decisions are controller.py's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import urllib.parse
import urllib.request
from collections import defaultdict

from contract import metric_names, serving_api
from serving import prometheus

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 5.0


@dataclasses.dataclass
class Evidence:
    """Totals from the app's /metrics pages, summed over the pages given."""

    calls: dict[tuple[str, str], float]  # (version, outcome) -> count
    latency: dict[str, dict[float, float]]  # version -> le -> cumulative count
    shadow: dict[tuple[str, str], float]  # (version, agreed) -> count

    def minus(self, base: Evidence) -> Evidence:
        def sub(a: dict, b: dict) -> dict:
            return {k: v - b.get(k, 0.0) for k, v in a.items()}

        return Evidence(
            sub(self.calls, base.calls),
            {v: sub(h, base.latency.get(v, {})) for v, h in self.latency.items()},
            sub(self.shadow, base.shadow),
        )

    def p99(self, version: str) -> float | None:
        return prometheus.quantile(list(self.latency.get(version, {}).items()), 0.99)


def replicas(url: str) -> list[str]:
    """The URL once for each address its host resolves to: a Kubernetes headless Service
    names every app replica, and each keeps its own counters."""
    parts = urllib.parse.urlsplit(url)
    addresses: list[str] = []
    # One family only: "localhost" has an IPv4 and an IPv6 address for the same process.
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            found = socket.getaddrinfo(parts.hostname, parts.port or 80, family, socket.SOCK_STREAM)
        except OSError:
            continue
        addresses = sorted({info[4][0] for info in found})
        break
    if not addresses:
        return [url]
    port = f":{parts.port}" if parts.port else ""
    return [
        urllib.parse.urlunsplit(parts._replace(netloc=f"[{a}]{port}" if ":" in a else f"{a}{port}"))
        for a in addresses
    ]


def scrape(urls: list[str]) -> Evidence:
    """Totals over every replica behind each URL."""
    calls: dict = defaultdict(float)
    latency: dict = defaultdict(lambda: defaultdict(float))
    shadow: dict = defaultdict(float)
    for url in (u for given in urls for u in replicas(given)):
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as reply:
            page = reply.read().decode()
        for name, labels, value in prometheus.parse(page):
            if name == metric_names.MODEL_CALLS:
                calls[(labels["version"], labels["outcome"])] += value
            elif name == metric_names.bucket(metric_names.MODEL_CALL_SECONDS):
                latency[labels["version"]][float(labels["le"])] += value
            elif name == metric_names.SHADOW_ANSWERS:
                shadow[(labels["version"], labels["agreed"])] += value
    return Evidence(dict(calls), {v: dict(h) for v, h in latency.items()}, dict(shadow))


def available_versions(model_url: str, model: str) -> set[str]:
    """Versions the model server reports AVAILABLE (TF Serving's status endpoint)."""
    url = model_url.rstrip("/") + serving_api.status_path(model)
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as reply:
            status = json.loads(reply.read())
    except OSError as err:
        log.warning("model server status unavailable: %s", err)
        return set()
    return set(serving_api.available_versions(status))
