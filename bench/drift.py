"""Drift detection on replayed traffic: false alarms on normal titles, and how many windows
each kind of shifted stream takes to raise the alarm (two windows above in a row).

    make bench-drift      (after `make` and `python -m monitoring.calibrate`)

Every stream is written as the app writes its request log (TF Serving PredictionLog
records, with the served model's outputs for each title), then judged by the monitoring
job itself, window after window, with monitoring/thresholds.json. Streams, 500 requests
a window:
  normal       the second half of unlabeled.tsv (the calibration used the first half)
  tag subset   5 normal windows, then titles whose tags are all web front-end ones
  noisy        5 normal windows, then normal titles with 15 % of characters garbled
  unseen tech  5 normal windows, then normal titles with every known technology name
               replaced by one the tags do not have (rust, kotlin, flutter, ...)
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from pathlib import Path

from contract import paths, serving_layout
from contract.quiet import quiet_imports
from ingest import seed_tsv

WINDOW_S = 600
PREFIX = 5  # normal windows before a shift
SHIFTED = 10
FRONT_END = {
    "javascript",
    "jquery",
    "html",
    "css",
    "html5",
    "ajax",
    "dom",
    "twitter-bootstrap",
    "angularjs",
    "json",
    "forms",
}
UNSEEN = [
    "rust",
    "kotlin",
    "flutter",
    "terraform",
    "kubernetes",
    "svelte",
    "elixir",
    "deno",
    "haskell",
    "scala",
    "golang",
    "vue",
]


def noisy(title: str, rng: random.Random) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz0123456789#@!?"
    return "".join(rng.choice(letters) if rng.random() < 0.15 else c for c in title)


def unseen(title: str, names: set[str], rng: random.Random) -> str:
    return " ".join(
        rng.choice(UNSEEN) if re.sub(r"\W", "", w.lower()) in names else w for w in title.split()
    )


def streams(window: int) -> dict[str, list[str]]:
    from monitoring.calibrate import unlabeled_titles

    rng = random.Random(0)
    held_out = unlabeled_titles()
    held_out = held_out[len(held_out) // 2 :]
    with open(paths.data_dir() / "train.tsv", "rb") as f:
        rows = list(seed_tsv.read_rows(f, seed_tsv.ParseReport()))
    front = [r.title for r in rows if set(r.tags) <= FRONT_END]
    rng.shuffle(front)
    tags = (paths.serving_model_dir()).glob("*/assets/tags")
    names = {re.sub(r"\W", "", t) for t in next(tags).read_text().split()} | {"python", "java"}
    prefix = held_out[: PREFIX * window]
    after = held_out[PREFIX * window : (PREFIX + SHIFTED) * window]
    return {
        "normal": held_out[: (len(held_out) // window) * window],
        "tag subset": prefix + front[: SHIFTED * window],
        "noisy": prefix + [noisy(t, rng) for t in after],
        "unseen tech": prefix + [unseen(t, names, rng) for t in after],
    }


def write_log(directory: Path, model_dir: str, titles: list[str], window: int) -> None:
    """The stream as the app's request log: one window of WINDOW_S per `window` titles."""
    from monitoring.baseline import model_outputs
    from serving.request_log import records
    from serving.request_log.writer import RequestLog

    scores, predicted, tags = model_outputs(model_dir, titles)
    log = RequestLog(str(directory), rate=1.0, max_bytes=1 << 30, max_seconds=1e9)
    start = 1_800_000_000
    for i, title in enumerate(titles):
        row = {
            "scores": scores[i].tolist(),
            "tags": tags,
            "threshold": 0.5,
            "predicted": predicted[i].tolist(),
        }
        at = start + (i // window) * WINDOW_S + (i % window) * WINDOW_S / window
        version = model_dir.rstrip("/").rsplit("/", 1)[-1]
        log.put(
            records.prediction_log(
                serving_layout.MODEL_NAME, version, "stable", title, row, 1.0, at
            )
        )
    log.close()


def main() -> None:
    with quiet_imports():
        from monitoring import baseline, compare, job
        from monitoring.__main__ import THRESHOLDS

    thresholds = compare.Thresholds.load(THRESHOLDS)
    window = thresholds.window_requests
    model_dir = baseline.newest_version(str(paths.serving_model_dir()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, titles in streams(window).items():
            started = time.perf_counter()
            logs, out = Path(tmp) / name / "logs", Path(tmp) / name / "out"
            with quiet_imports():
                write_log(logs, model_dir, titles, window)
                results = job.run(
                    str(logs),
                    str(paths.serving_model_dir()),
                    str(paths.spans_dir()),
                    str(out),
                    thresholds,
                    WINDOW_S,
                    now=4e9,
                )
            shift = None if name == "normal" else PREFIX
            normal = results if shift is None else results[:shift]
            false_alarms = sum(r["alarm"] for r in normal)
            delay = None
            if shift is not None:
                alarmed = [i for i, r in enumerate(results[shift:]) if r["alarm"]]
                delay = alarmed[0] + 1 if alarmed else None
            flagged = sorted({a for r in results[shift or 0 :] for a in r["above"]})
            rows.append((name, len(results), false_alarms, delay, flagged))
            print(
                f"{name}: {len(results)} windows in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    print(f"\n{'stream':<12} {'windows':>7} {'false alarms':>12} {'alarm after':>12}  above")
    for name, count, false_alarms, delay, flagged in rows:
        after = "-" if name == "normal" else (f"{delay} windows" if delay else "never")
        print(f"{name:<12} {count:>7} {false_alarms:>12} {after:>12}  {', '.join(flagged[:6])}")
    print(
        f"(an alarm is {job.ALARM_WINDOWS} windows above in a row: the earliest is "
        f"{job.ALARM_WINDOWS}; windows of {window} requests)"
    )


if __name__ == "__main__":
    main()
