"""python -m monitoring.calibrate: the drift thresholds, from the spread of normal data.

Measures, with the served model's outputs:
  - chunks of the training spans' titles (those outside the baseline sample) against the
    baseline (skew), and each against the one before (drift): the spread between
    training spans;
  - windows of the first half of unlabeled.tsv, replayed as normal traffic, the same way.
The second half of unlabeled.tsv is left for bench/drift.py to replay as unseen normal
traffic. Each threshold is the largest distance seen times MARGIN (for the domain AUC,
its distance above 0.5 times MARGIN). The file it writes, monitoring/thresholds.json, is
reviewed and committed like the hyperparameters.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from contract import paths
from contract.quiet import quiet_imports

MARGIN = 1.25
WINDOW = 500  # requests per window: about 10 minutes of the default 10 % log at 8/s
CHUNKS = 20


def unlabeled_titles() -> list[str]:
    lines = (paths.data_dir() / "unlabeled.tsv").read_text(encoding="utf-8").splitlines()
    return [line for line in lines[1:] if line.strip()]


def measure(frames, base_stats, base_titles, schema) -> list[dict]:
    """Distances of each frame against the baseline and the frame before."""
    from monitoring import compare

    found, previous = [], None
    for frame in frames:
        stats = compare.statistics(frame)
        found.append(
            {
                compare.SKEW: compare.skew(base_stats, stats, schema),
                compare.DRIFT: compare.drift(previous, stats, schema) if previous else {},
                "domain_auc": compare.domain_auc(list(frame["title"]), base_titles),
            }
        )
        previous = stats
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m monitoring.calibrate", description=__doc__)
    p.add_argument("--model-base-path", default=str(paths.serving_model_dir()))
    p.add_argument("--spans", default=str(paths.spans_dir()))
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "thresholds.json")
    args = p.parse_args(argv)
    with quiet_imports():
        from monitoring import baseline, compare

        model_dir = baseline.newest_version(args.model_base_path)
        spans = baseline.span_titles(args.spans)
        base_titles = baseline.sample(spans)
        chosen = set(base_titles)
        rest = [t for t in spans if t not in chosen][: CHUNKS * WINDOW]
        normal = unlabeled_titles()
        normal = normal[: len(normal) // 2][: CHUNKS * WINDOW]
        base_stats = compare.statistics(baseline.described(model_dir, base_titles))
        schema = compare.schema(base_stats, compare.Thresholds.report_all())
        sources = {}
        for name, titles in (("training chunks", rest), ("normal traffic", normal)):
            frame = baseline.described(model_dir, titles)
            frames = [frame.iloc[i : i + WINDOW] for i in range(0, len(frame), WINDOW)]
            sources[name] = measure(frames, base_stats, base_titles, schema)
            print(f"{name}: {len(frames)} windows of {WINDOW} measured", flush=True)
    measured = [m for found in sources.values() for m in found]
    observed = {
        kind: {f: max(m[kind].get(f, 0.0) for m in measured) for f in compare.COMPARED}
        for kind in (compare.SKEW, compare.DRIFT)
    }
    auc = max(m["domain_auc"] for m in measured)
    result = {
        "how": f"python -m monitoring.calibrate: the largest distance over {CHUNKS} windows "
        f"of {WINDOW} training titles outside the baseline sample and {CHUNKS} windows "
        f"of the first half of unlabeled.tsv, times {MARGIN}; model version "
        f"{model_dir.rsplit('/', 1)[-1]}",
        "window_requests": WINDOW,
        "skew": {f: round(v * MARGIN, 4) for f, v in observed[compare.SKEW].items()},
        "drift": {f: round(v * MARGIN, 4) for f, v in observed[compare.DRIFT].items()},
        "domain_auc": round(0.5 + (auc - 0.5) * MARGIN, 4),
        "observed": {**observed, "domain_auc": auc},
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"thresholds written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
