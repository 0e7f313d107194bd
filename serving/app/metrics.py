"""The app's Prometheus metrics, under the names the predecessor's dashboards read.

Model quality is the served version's Evaluator result, which the Pusher publishes
beside the model (serving/app/quality.py). It is read when a scrape first sees a
version, before that scrape answers, so an alert rule never sees the series vanish.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from contract import metric_names
from serving.app.quality import Quality, read_published
from serving.app.traffic import Live
from serving.prometheus import Counter, Histogram, gauge
from store import objects
from store.live_quality import LiveQuality

log = logging.getLogger(__name__)
LATENCY_BUCKETS_S = [0.001 * 2**i for i in range(14)]  # 1 ms .. 8 s
# Predecessor name -> the Evaluator's metric (see pipeline/eval_config.py).
QUALITY = {
    "stackoverflow_tagger_accuracy_score": "exact_match",
    "stackoverflow_tagger_f1_score": "micro_f1_score",
    "stackoverflow_tagger_average_precision_score": "micro_auc_precision_recall",
    "stackoverflow_tagger_roc_auc": "micro_auc",
}
# A version whose quality is not published (yet) is asked again after this long.
RETRY_SECONDS = 10.0


class AppMetrics:
    def __init__(self, model_base_path: str, monitor_record: str | None = None) -> None:
        self.model_base_path = model_base_path
        self.monitor_path = monitor_record
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
        # Per version, for the rollout controller's checks (serving/rollout/evidence.py).
        self.model_calls = Counter(
            metric_names.MODEL_CALLS,
            "Calls to the model server, by version and outcome (ok, error).",
            ("version", "outcome"),
        )
        self.model_latency = Histogram(
            metric_names.MODEL_CALL_SECONDS,
            "Wall time of calls to the model server, by version.",
            ("version",),
            LATENCY_BUCKETS_S,
        )
        self.shadow = Counter(
            metric_names.SHADOW_ANSWERS,
            "Shadow answers of the canary, by whether it gave stable's tags.",
            ("version", "agreed"),
        )
        self._quality: dict[str, Quality] = {}
        self._missing: dict[str, float] = {}  # version -> when it was last found absent
        self._lock = threading.Lock()

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.observe(seconds, endpoint, str(status))

    def monitor_record(self) -> dict | None:
        """The drift monitor's latest record, or None (none yet, unreadable, or off).
        Blocking: call it off the event loop."""
        if not self.monitor_path:
            return None
        try:
            data = objects.read(self.monitor_path)
            return json.loads(data) if data else None
        except Exception:  # noqa: BLE001 - a missing or broken record: no drift gauges
            log.warning("drift record %s unreadable", self.monitor_path, exc_info=True)
            return None

    def model_call(self, version: str, outcome: str, seconds: float) -> None:
        self.model_calls.inc(version, outcome)
        self.model_latency.observe(seconds, version)

    def quality(self, version: str) -> Quality | None:
        """The version's published quality; read once, blocking (call it off the event
        loop). Unknown (None) while the Pusher has published none for it."""
        with self._lock:
            if version in self._quality:
                return self._quality[version]
            if time.monotonic() - self._missing.get(version, -RETRY_SECONDS) < RETRY_SECONDS:
                return None
        try:
            found = read_published(self.model_base_path, version)
        except Exception:  # noqa: BLE001 - the store is unreachable: quality is unknown
            log.warning("quality of version %s could not be read", version, exc_info=True)
            found = None
        with self._lock:
            if found is None:
                self._missing[version] = time.monotonic()
            else:
                self._quality[version] = found
                self._missing.pop(version, None)
        return found

    def render(
        self,
        version: str | None,
        quality: Quality | None,
        counts: dict[str, int],
        outcomes: dict[str, int],
        live: Live | None = None,
        online: dict[str, LiveQuality] | None = None,
        events: dict[str, int] | None = None,
        logged: dict[str, int] | None = None,
        monitor: dict | None = None,
    ) -> str:
        lines: list[str] = []
        if version is not None:
            lines += gauge(
                "stackoverflow_tagger_model_version",
                "The model version serving.",
                [("", float(version))],
            )
        if quality is not None:
            for name, key in QUALITY.items():
                if key in quality.metrics:
                    lines += gauge(
                        name, f"Evaluator {key} of the served model.", [("", quality.metrics[key])]
                    )
            lines += gauge(
                "stackoverflow_tagger_latest_model_update",
                "When the served model was pushed (Unix time).",
                [("", quality.pushed_at)],
            )
        lines += gauge(
            "stackoverflow_tagger_feedback_samples",
            "Stored feedback samples, by status.",
            [(f'{{status="{k}"}}', v) for k, v in sorted(counts.items())],
        )
        runs = Counter(
            "stackoverflow_tagger_retrain_runs_total", "Retrain runs, by outcome.", ("outcome",)
        )
        for outcome, count in outcomes.items():
            runs.inc(outcome, amount=count)
        lines += runs.render() + self.feedback.render() + self.requests.render()
        lines += self._release(live, events) + self._online(online or {})
        if logged is not None:
            written = Counter(
                "stackoverflow_tagger_request_log_records_total",
                "Predictions sampled into the request log, by outcome.",
                ("outcome",),
            )
            for outcome, count in sorted(logged.items()):
                written.inc(outcome, amount=count)
            lines += written.render()
        lines += self.model_calls.render() + self.model_latency.render() + self.shadow.render()
        lines += self._monitor(monitor) if monitor else []
        return "\n".join(lines) + "\n"

    @staticmethod
    def _release(live: Live | None, events: dict[str, int] | None) -> list[str]:
        lines: list[str] = []
        if live is not None:
            labels = [('{label="stable"}', float(live.stable))]
            if live.canary:
                labels.append(('{label="canary"}', float(live.canary)))
            lines += gauge(
                "stackoverflow_tagger_served_version", "The version each label names.", labels
            )
            share = live.share if live.canary and live.mode == "canary" else 0.0
            lines += gauge(
                "stackoverflow_tagger_canary_share",
                "Share of clients the canary answers.",
                [("", share)],
            )
        if events is not None:
            count = Counter(
                "stackoverflow_tagger_rollout_events_total",
                "Release events, by action.",
                ("action",),
            )
            for action, n in sorted(events.items()):
                count.inc(action, amount=n)
            lines += count.render()
        return lines

    @staticmethod
    def _monitor(record: dict) -> list[str]:
        """The drift monitor's latest window (monitoring/job.py writes the record)."""
        distances, thresholds = [], []
        for kind in ("skew", "drift"):
            for feature, value in sorted(record[kind].items()):
                labels = f'{{kind="{kind}",feature="{feature}"}}'
                distances.append((labels, value))
                thresholds.append((labels, record["thresholds"][kind][feature]))
        return (
            gauge(
                "stackoverflow_tagger_drift_distance",
                "TFDV distance of the latest window (L-infinity or Jensen-Shannon).",
                distances,
            )
            + gauge("stackoverflow_tagger_drift_threshold", "Calibrated threshold.", thresholds)
            + gauge(
                "stackoverflow_tagger_drift_domain_auc",
                "ROC AUC of a classifier telling the window's titles from training's.",
                [("", record["domain_auc"])],
            )
            + gauge(
                "stackoverflow_tagger_drift_domain_auc_threshold",
                "Calibrated threshold.",
                [("", record["thresholds"]["domain_auc"])],
            )
            + gauge(
                "stackoverflow_tagger_drift_windows_above",
                "Windows in a row with something above its threshold.",
                [("", record["windows_above"])],
            )
            + gauge(
                "stackoverflow_tagger_drift_last_window_end",
                "End of the latest judged window (Unix time).",
                [("", record["window_end"])],
            )
        )

    @staticmethod
    def _online(online: dict[str, LiveQuality]) -> list[str]:
        """Live quality: each version's decisions against its users' corrections."""
        lines: list[str] = []
        for name, what, value in (
            ("precision", "precision", lambda q: q.precision),
            ("recall", "recall", lambda q: q.recall),
            ("f1", "F1 micro", lambda q: q.f1),
            ("samples", "feedback samples behind", lambda q: q.samples),
        ):
            lines += gauge(
                f"stackoverflow_tagger_live_{name}",
                f"Live {what} of each served version, from feedback.",
                [(f'{{version="{v}"}}', value(q)) for v, q in online.items()],
            )
        return lines
