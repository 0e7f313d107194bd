"""Feedback to served: from the Nth feedback sample to the new version being served.

    make bench-feedback      (builds what it needs under build/bench-feedback/)

The first model is trained on train.tsv but its last ROUNDS x BATCH rows. Then two
copies of that state, one per path, each with its model server and app: "today" runs
the worker and pipeline of the reference revision (--reference, the path before the
retrain was made faster; its tree is taken from git), "new" those of this checkout.
ROUNDS times, for each path in turn, BATCH of those rows are sent through the app's API
as feedback (their true tags as the correction), the learning worker takes the step it
takes when a batch is full (`python -m learning --once`: claim, span, pipeline run with
warm start, outcome), and the bench waits until the model server serves the version it
pushed. Both paths get the same batches; the rounds alternate, so a busier minute on the
machine falls on both. Each round's time is split into stages, from the worker's record,
ML Metadata and the servers:

  worker before the run   claim, the span written, the runner started
  <component>             each pipeline component's wall time (ML Metadata)
  runner and worker exit  the runner's end, the outcome recorded
  load and serve          the model server's poll and load, until the app names it

Printed side by side for every round of both paths, with each path's median total
beside the target (3 min). The worker in production polls every 5 s for a full batch
(`--poll-seconds`): up to that is added before its step begins.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from bench.learning_curve import first_model, retrain_once, rows_of, send_feedback, serving
from contract import paths
from pipeline import metadata

TARGET_SECONDS = 180
# The last revision before in-process Beam, Transform without its own statistics and
# the Evaluator's per-example micro metrics.
REFERENCE = "a49ea7d"


def stages(work: Path, started: float, done: dict) -> dict[str, float]:
    """The round's seconds by stage, in the order they happened."""
    _, nodes = metadata.latest_run(metadata.sqlite_store(str(work / "metadata.sqlite")))
    run_start = min(n.started_ms for n in nodes) / 1000
    run_end = max(n.finished_ms for n in nodes) / 1000
    found = {"worker before the run": run_start - started}
    for n in sorted(nodes, key=lambda n: n.started_ms):
        if n.seconds >= 0.5:  # resolvers, importers and gates take no time worth a row
            found[n.node] = n.seconds
    found["runner and worker exit"] = done["exited"] - run_end
    found["load and serve"] = done["served"] - done["exited"]
    found["total"] = done["served"] - started
    return found


def tree_of(revision: str, into: Path) -> Path:
    """The checkout's files at revision, under into (inside the checkout, where the
    project's environment sees them)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(paths.CHECKOUT), "archive", revision], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def table(runs: dict[str, list[dict]], base_rows: int, batch: int) -> list[str]:
    names = list(dict.fromkeys(n for rounds in runs.values() for found in rounds for n in found))
    columns = []
    for path, rounds in runs.items():
        columns += [f"{path} {i + 1}" for i in range(len(rounds))] + [f"{path} med"]
    head = "".join(f"{c:>10}" for c in columns)
    lines = [
        f"feedback to served, {batch} samples a round on {base_rows} base rows, warm start "
        "(the worker's default), seconds; today = the reference revision, new = this "
        "checkout",
        f"{'stage':<24}{head}",
    ]
    for name in names:
        cells = []
        for rounds in runs.values():
            values = [found.get(name, 0.0) for found in rounds]
            cells += [f"{v:>10.1f}" for v in values] + [f"{statistics.median(values):>10.1f}"]
        lines.append(f"{name:<24}" + "".join(cells))
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=100, help="feedback samples per retrain")
    p.add_argument("--reference", default=REFERENCE, help="the revision run as today's path")
    p.add_argument("--work", type=Path, default=paths.build_dir() / "bench-feedback")
    args = p.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    rows = rows_of(paths.data_dir() / "train.tsv")
    fed = args.rounds * args.batch
    base, feedback = rows[:-fed], rows[-fed:]
    checkouts = {
        "today": tree_of(args.reference, args.work / "reference-tree"),
        "new": paths.CHECKOUT,
    }
    print(f"first model on {len(base)} rows ...", flush=True)
    first_seconds = first_model(args.work / "first", base, [])
    print(f"first model: {first_seconds:.0f} s", flush=True)
    runs: dict[str, list[dict]] = {path: [] for path in checkouts}
    outcomes: dict[str, list[str]] = {path: [] for path in checkouts}
    with contextlib.ExitStack() as stack:
        apps = {}
        for path in checkouts:
            # The same first model for both: a copy of its whole state (data, ML
            # Metadata, pushed model); artifacts it points to stay in the first one.
            shutil.copytree(args.work / "first", args.work / path, symlinks=True)
            apps[path] = stack.enter_context(serving(args.work / path))[1]
        for n in range(args.rounds):
            for path, checkout in checkouts.items():
                app = apps[path]
                version = app.get("/api/ready").json()["model_version"]
                send_feedback(app, feedback[n * args.batch : (n + 1) * args.batch], version)
                started = time.time()  # the batch's last sample is stored
                done = retrain_once(args.work / path, app, [], checkout=checkout)
                runs[path].append(stages(args.work / path, started, done))
                outcomes[path].append(done["outcome"])
                print(
                    f"{path} round {n + 1}: {done['outcome']} version {done['version']}, "
                    f"{runs[path][-1]['total']:.0f} s",
                    flush=True,
                )

    print("\n" + "\n".join(table(runs, len(base), args.batch)))
    for path, rounds in runs.items():
        median = statistics.median(found["total"] for found in rounds)
        print(
            f"{path}: median total {median:.0f} s against the target {TARGET_SECONDS} s: "
            f"{'met' if median <= TARGET_SECONDS else 'MISSED'} "
            f"(outcomes: {', '.join(outcomes[path])})"
        )


if __name__ == "__main__":
    main()
