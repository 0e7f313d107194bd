"""The model server's metrics, under TF Serving's names (serving/prometheus.py's format).

TF Serving exports its TensorFlow monitoring metrics with '/' turned into ':' (so
`/tensorflow/serving/request_count` is `:tensorflow:serving:request_count`).
"""

from __future__ import annotations

from serving.prometheus import Counter, Histogram

# TF Serving's request latency buckets: Exponential(10, 1.8, 33), in microseconds.
LATENCY_BUCKETS_US = [10 * 1.8**i for i in range(33)]
BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


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
