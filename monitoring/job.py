"""The monitoring job: every complete window of the request log not yet judged, in time
order, against the training spans and against the window before it.

State lives under --out (a directory or gs:// prefix): windows/<start>.json (the record),
windows/<start>.stats.pb (its statistics, for the next window's drift),
baseline-<version>/ (the training side, computed once per model version), and
latest.json, which the app turns into Prometheus gauges and the rollout controller reads
as its skew check.

A record: window start and end, requests, versions, every measured distance with its
threshold, the domain AUC, what is above, how many windows in a row have been above, and
`alarm` (two in a row).
"""

from __future__ import annotations

import json
import time

import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2

from monitoring import baseline, compare, logs
from monitoring.features import describe, vocabulary

ALARM_WINDOWS = 2


def _join(*parts: str) -> str:
    return "/".join([parts[0].rstrip("/"), *parts[1:]])


def _write(path: str, data: bytes) -> None:
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def _read(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def _stats(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    return statistics_pb2.DatasetFeatureStatisticsList.FromString(_read(path))


def _baseline(out: str, model_dir: str, spans_dir: str):
    cache = _join(out, f"baseline-{model_dir.rstrip('/').rsplit('/', 1)[-1]}")
    stats_file, titles_file = _join(cache, "stats.pb"), _join(cache, "titles.json")
    if tf.io.gfile.exists(stats_file):
        return _stats(stats_file), json.loads(_read(titles_file))
    titles = baseline.sample(baseline.span_titles(spans_dir))
    stats = compare.statistics(baseline.described(model_dir, titles))
    tf.io.gfile.makedirs(cache)
    _write(titles_file, json.dumps(titles).encode())
    _write(stats_file, stats.SerializeToString())  # last: its presence means complete
    return stats, titles


def judged_windows(out: str) -> list[int]:
    names = tf.io.gfile.glob(_join(out, "windows", "*.json"))
    return sorted(int(n.rsplit("/", 1)[-1].removesuffix(".json")) for n in names)


def run(
    log_prefix: str,
    model_base_path: str,
    spans_dir: str,
    out: str,
    thresholds: compare.Thresholds,
    window_s: int,
    now: float | None = None,
    record=None,
) -> list[dict]:
    """Judges the windows that ended before `now`; returns their records. record: called
    with each record (ML Metadata, see monitoring/__main__.py)."""
    now = time.time() if now is None else now
    model_dir = baseline.newest_version(str(model_base_path))
    base_stats, base_titles = _baseline(str(out), model_dir, str(spans_dir))
    schema = compare.schema(base_stats, thresholds)
    vocab = vocabulary(model_dir)
    windows_dir = _join(str(out), "windows")
    tf.io.gfile.makedirs(windows_dir)
    done = judged_windows(str(out))
    previous = done[-1] if done else None
    results = []
    for start, window in logs.windows(logs.read(logs.log_files(log_prefix)), window_s):
        if start + window_s > now or (previous is not None and start <= previous):
            continue
        frame = describe(window.titles, window.scores, window.predicted, window.tags, vocab)
        measured = {compare.SKEW: {}, compare.DRIFT: {}, "domain_auc": 0.5}
        prior_record = _join(windows_dir, f"{previous}.json")
        before = json.loads(_read(prior_record)) if previous is not None else None
        judged = len(frame) >= thresholds.window_requests
        if judged:
            stats = compare.statistics(frame)
            _write(_join(windows_dir, f"{start}.stats.pb"), stats.SerializeToString())
            measured[compare.SKEW] = compare.skew(base_stats, stats, schema)
            prior = _join(windows_dir, f"{previous}.stats.pb")
            if previous is not None and tf.io.gfile.exists(prior):
                measured[compare.DRIFT] = compare.drift(_stats(prior), stats, schema)
            measured["domain_auc"] = compare.domain_auc(window.titles, base_titles)
        flagged = compare.above(measured, thresholds)
        streak = (before["windows_above"] if before else 0) + 1 if flagged else 0
        result = {
            "window_start": start,
            "window_end": start + window_s,
            "requests": len(frame),
            "versions": sorted(set(window.version)),
            "model_version": model_dir.rstrip("/").rsplit("/", 1)[-1],
            "skew": measured[compare.SKEW],
            "drift": measured[compare.DRIFT],
            "domain_auc": measured["domain_auc"],
            "thresholds": {
                "skew": thresholds.skew,
                "drift": thresholds.drift,
                "domain_auc": thresholds.domain_auc,
            },
            "above": flagged,
            "windows_above": streak,
            "alarm": streak >= ALARM_WINDOWS,
            "judged": judged,
            "judged_at": time.time(),
        }
        text = json.dumps(result, indent=1).encode()
        _write(_join(windows_dir, f"{start}.json"), text)
        _write(_join(str(out), "latest.json"), text)
        if record is not None:
            record(result)
        results.append(result)
        previous = start
    return results
