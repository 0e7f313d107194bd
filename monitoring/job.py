"""The monitoring job: every complete window of the request log not yet judged, in time
order, against the training spans and against the window before it.

State lives under --out (a directory): windows/<start>.json (the record), windows/
<start>.stats.pb (its statistics, for the next window's drift), baseline-<version>/ (the
training side, computed once per model version), and latest.json, which the app turns
into Prometheus gauges and the rollout controller reads as its skew check.

A record: window start and end, requests, versions, every measured distance with its
threshold, the domain AUC, what is above, how many windows in a row have been above, and
`alarm` (two in a row).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tensorflow_metadata.proto.v0 import statistics_pb2

from monitoring import baseline, compare, logs
from monitoring.features import describe, vocabulary

ALARM_WINDOWS = 2


def _baseline(out: Path, model_dir: Path, spans_dir: Path):
    cache = out / f"baseline-{model_dir.name}"
    stats_file, titles_file = cache / "stats.pb", cache / "titles.json"
    if stats_file.exists():
        return _stats(stats_file), json.loads(titles_file.read_text())
    titles = baseline.sample(baseline.span_titles(spans_dir))
    stats = compare.statistics(baseline.described(model_dir, titles))
    cache.mkdir(parents=True, exist_ok=True)
    stats_file.write_bytes(stats.SerializeToString())
    titles_file.write_text(json.dumps(titles))
    return stats, titles


def run(log_prefix: str, model_base_path: Path, spans_dir: Path, out: Path,
        thresholds: compare.Thresholds, window_s: int, now: float | None = None,
        record=None) -> list[dict]:  # fmt: skip
    """Judges the windows that ended before `now`; returns their records. record: called
    with each record (ML Metadata, see monitoring/__main__.py)."""
    now = time.time() if now is None else now
    model_dir = baseline.newest_version(model_base_path)
    base_stats, base_titles = _baseline(out, model_dir, spans_dir)
    schema = compare.schema(base_stats, thresholds)
    vocab = vocabulary(model_dir)
    judged_dir = out / "windows"
    judged_dir.mkdir(parents=True, exist_ok=True)
    done = sorted(int(p.stem) for p in judged_dir.glob("*.json"))
    previous = done[-1] if done else None
    results = []
    for start, window in logs.windows(logs.read(logs.log_files(log_prefix)), window_s):
        if start + window_s > now or (previous is not None and start <= previous):
            continue
        frame = describe(window.titles, window.scores, window.predicted, window.tags, vocab)
        measured = {compare.SKEW: {}, compare.DRIFT: {}, "domain_auc": 0.5}
        before = _read(judged_dir, previous)
        if len(frame) >= thresholds.window_requests:
            stats = compare.statistics(frame)
            (judged_dir / f"{start}.stats.pb").write_bytes(stats.SerializeToString())
            measured[compare.SKEW] = compare.skew(base_stats, stats, schema)
            prior = judged_dir / f"{previous}.stats.pb"
            if previous is not None and prior.exists():
                measured[compare.DRIFT] = compare.drift(_stats(prior), stats, schema)
            measured["domain_auc"] = compare.domain_auc(window.titles, base_titles)
        flagged = compare.above(measured, thresholds)
        streak = (before["windows_above"] if before else 0) + 1 if flagged else 0
        result = {
            "window_start": start, "window_end": start + window_s, "requests": len(frame),
            "versions": sorted(set(window.version)), "model_version": model_dir.name,
            "skew": measured[compare.SKEW], "drift": measured[compare.DRIFT],
            "domain_auc": measured["domain_auc"],
            "thresholds": {"skew": thresholds.skew, "drift": thresholds.drift,
                           "domain_auc": thresholds.domain_auc},
            "above": flagged, "windows_above": streak, "alarm": streak >= ALARM_WINDOWS,
            "judged": len(frame) >= thresholds.window_requests, "judged_at": time.time(),
        }  # fmt: skip
        (judged_dir / f"{start}.json").write_text(json.dumps(result, indent=1))
        (out / "latest.json").write_text(json.dumps(result, indent=1))
        if record is not None:
            record(result)
        results.append(result)
        previous = start
    return results


def _stats(path: Path) -> statistics_pb2.DatasetFeatureStatisticsList:
    return statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes())


def _read(judged_dir: Path, start: int | None) -> dict | None:
    if start is None:
        return None
    return json.loads((judged_dir / f"{start}.json").read_text())
