"""The app's Prometheus metrics, under the names the predecessor's dashboards read.

Model quality comes from the served version's Evaluator result, read once per version:
where the Pusher publishes it beside the model (serving_layout.quality_path) when the
app is given TF Serving's base path, as on a cluster; else through the local ML
Metadata store (PushedModel -> Pusher -> blessing -> Evaluator).
"""

from __future__ import annotations

import json
import logging
import threading

from pipeline import metadata, paths, serving_layout
from serving.model_server.metrics import Counter, Histogram

log = logging.getLogger(__name__)
LATENCY_BUCKETS_S = [0.001 * 2**i for i in range(14)]  # 1 ms .. 8 s
# Predecessor name -> the Evaluator's metric (see pipeline/eval_config.py).
QUALITY = {
    "stackoverflow_tagger_accuracy_score": "exact_match",
    "stackoverflow_tagger_f1_score": "micro_f1_score",
    "stackoverflow_tagger_average_precision_score": "micro_auc_precision_recall",
    "stackoverflow_tagger_roc_auc": "micro_auc",
}


def published_quality_of(base_path: str, version: str) -> tuple[dict[str, float], float] | None:
    """(Evaluator metrics, push time) the Pusher wrote beside this version, if any."""
    import tensorflow as tf  # gfile reads gs:// too

    path = serving_layout.quality_path(base_path, version)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        published = json.load(f)
    return published["metrics"], published["pushed_at"]


def quality_of(metadata_path: str, version: str) -> tuple[dict[str, float], float] | None:
    """(Evaluator metrics, push time) of the pushed model with this version, if recorded."""
    from pipeline import evaluation

    store = metadata.sqlite_store(metadata_path)
    pushed = [
        a for a in store.get_artifacts_by_type("PushedModel")
        if metadata.value(a.custom_properties, "pushed_version") == version
    ]  # fmt: skip
    if not pushed:
        return None
    found = metadata.lineage(store, pushed[-1])
    quality = evaluation.overall(evaluation.load(found["evaluation"]["uri"]))
    return quality, pushed[-1].create_time_since_epoch / 1000


class AppMetrics:
    def __init__(
        self, metadata_path: str | None = None, model_base_path: str | None = None
    ) -> None:
        self.metadata_path = metadata_path or str(paths.metadata_path())
        self.model_base_path = model_base_path
        self.requests = Histogram(
            "stackoverflow_tagger_request_latency_seconds",
            "Wall time of API requests, by endpoint and status.",
            ("endpoint", "status"),
            LATENCY_BUCKETS_S,
        )
        self.feedback = Counter(
            "stackoverflow_tagger_feedback_received_total",
            "Feedback requests answered, by outcome.",
            ("outcome",),
        )
        self._quality: dict[str, tuple[dict[str, float], float] | None] = {}
        self._lock = threading.Lock()

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.observe(seconds, endpoint, str(status))

    def _load_quality(self, version: str) -> None:
        try:
            if self.model_base_path:
                found = published_quality_of(self.model_base_path, version)
            else:
                found = quality_of(self.metadata_path, version)
        except Exception:  # noqa: BLE001 - no metadata here: quality is simply unknown
            log.warning("no Evaluator result for version %s", version, exc_info=True)
            found = None
        with self._lock:
            self._quality[version] = found

    def render(self, version: str | None, counts: dict[str, int], batches: list[dict]) -> str:
        lines = []

        def gauge(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} gauge"])
            lines.extend(f"{name}{labels} {value}" for labels, value in samples)

        if version is not None:
            with self._lock:
                known = version in self._quality
                quality = self._quality.get(version)
            if not known:  # read in the background: TFMA is slow to import
                with self._lock:
                    self._quality[version] = None
                threading.Thread(target=self._load_quality, args=(version,), daemon=True).start()
            gauge("stackoverflow_tagger_model_version", "The model version serving.",
                  [("", float(version))])  # fmt: skip
            if quality is not None:
                values, pushed_at = quality
                for name, key in QUALITY.items():
                    if key in values:
                        gauge(name, f"Evaluator {key} of the served model.", [("", values[key])])
                when = "When the served model was pushed (Unix time)."
                gauge("stackoverflow_tagger_latest_model_update", when, [("", pushed_at)])
        gauge("stackoverflow_tagger_feedback_samples", "Stored feedback samples, by status.",
              [(f'{{status="{k}"}}', v) for k, v in sorted(counts.items())])  # fmt: skip
        outcomes: dict[str, int] = {"blessed": 0, "not_blessed": 0, "failed": 0}
        for batch in batches:
            if batch["outcome"] in outcomes:
                outcomes[batch["outcome"]] += 1
        lines.extend([
            "# HELP stackoverflow_tagger_retrain_runs_total Retrain runs, by outcome.",
            "# TYPE stackoverflow_tagger_retrain_runs_total counter",
        ])  # fmt: skip
        lines += [f'stackoverflow_tagger_retrain_runs_total{{outcome="{k}"}} {v}'
                  for k, v in outcomes.items()]  # fmt: skip
        lines += self.feedback.render() + self.requests.render()
        return "\n".join(lines) + "\n"
