"""Prometheus metrics under TF Serving's names, in the text exposition format.

TF Serving exports its TensorFlow monitoring metrics with '/' turned into ':' (so
`/tensorflow/serving/request_count` is `:tensorflow:serving:request_count`) and counters
without the `_total` suffix that prometheus_client always adds; hence this small
registry instead of that library. Thread-safe: loads and batches record from threads.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

# TF Serving's request latency buckets: Exponential(10, 1.8, 33), in microseconds.
LATENCY_BUCKETS_US = [10 * 1.8**i for i in range(33)]
BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return (
        repr(float(value))
        if isinstance(value, float) and not value.is_integer()
        else str(int(value))
    )


class Counter:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.label_names = name, help_text, labels
        self._values: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1) -> None:
        with self._lock:
            self._values[labels] += amount

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]
        return lines


class Histogram:
    def __init__(
        self, name: str, help_text: str, labels: tuple[str, ...], buckets: list[float]
    ) -> None:
        self.name, self.help, self.label_names, self.buckets = name, help_text, labels, buckets
        self._counts: dict[tuple[str, ...], list[int]] = {}
        self._sums: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            counts = self._counts.setdefault(labels, [0] * (len(self.buckets) + 1))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sums[labels] += value

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v), self._sums[k]) for k, v in self._counts.items())
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for labels, counts, total in items:
            running = 0
            for bound, count in zip(self.buckets, counts, strict=False):
                running += count
                le = f'le="{_number(round(bound, 6))}"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, labels, le)} {running}")
            running += counts[-1]
            inf = 'le="+Inf"'
            lines.append(f"{self.name}_bucket{_labels(self.label_names, labels, inf)} {running}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, labels)} {_number(total)}")
            lines.append(f"{self.name}_count{_labels(self.label_names, labels)} {running}")
        return lines


class ServerMetrics:
    def __init__(self) -> None:
        self.request_count = Counter(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            ("model_name", "status"),
        )
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ("model_name", "API", "entrypoint"),
            LATENCY_BUCKETS_US,
        )
        self.load_attempts = Counter(
            ":tensorflow:cc:saved_model:load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            ("model_path", "status"),
        )
        self.load_latency = Counter(
            ":tensorflow:cc:saved_model:load_latency",
            "Latency in microseconds for SavedModels that were successfully loaded.",
            ("model_path",),
        )
        self.batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Tracks the batch size distribution on processing.",
            ("model_name",),
            BATCH_SIZE_BUCKETS,
        )

    def record_request(self, model: str, api: str, status: str, seconds: float) -> None:
        self.request_count.inc(model, status)
        self.request_latency.observe(seconds * 1e6, model, api, "REST")

    def record_load(self, model_path: str, ok: bool, seconds: float) -> None:
        self.load_attempts.inc(model_path, "success" if ok else "fail")
        if ok:
            self.load_latency.inc(model_path, amount=round(seconds * 1e6))

    def render(self) -> str:
        metrics = (
            self.request_count,
            self.request_latency,
            self.load_attempts,
            self.load_latency,
            self.batch_size,
        )
        return "\n".join(line for m in metrics for line in m.render()) + "\n"
