"""Feedback to served: from the Nth feedback sample to the new version being served.

    make bench-feedback      (builds what it needs under build/bench-feedback/)

The first model is trained on train.tsv but its last ROUNDS x BATCH rows; then, ROUNDS
times, BATCH of those rows are sent through the app's API as feedback (their true tags
as the correction), the learning worker takes the step it takes when a batch is full
(`python -m learning --once`: claim, span, pipeline run with warm start, outcome), and
the bench waits until the model server serves the version it pushed. Each round's time
is split into stages, from the worker's record, ML Metadata and the servers:

  worker before the run   claim, the span written, the runner started
  <component>             each pipeline component's wall time (ML Metadata)
  runner and worker exit  the runner's end, the outcome recorded
  load and serve          the model server's poll and load, until the app names it

Printed side by side for every round, with the median total beside the target (3 min).
The worker in production polls every 5 s for a full batch (`--poll-seconds`): up to that
is added before its step begins.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from bench.learning_curve import first_model, retrain_once, rows_of, send_feedback, serving
from contract import paths
from pipeline import metadata

TARGET_SECONDS = 180


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=100, help="feedback samples per retrain")
    p.add_argument("--work", type=Path, default=paths.build_dir() / "bench-feedback")
    args = p.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    rows = rows_of(paths.data_dir() / "train.tsv")
    fed = args.rounds * args.batch
    base, feedback = rows[:-fed], rows[-fed:]
    print(f"first model on {len(base)} rows ...", flush=True)
    first_seconds = first_model(args.work, base, [])
    print(f"first model: {first_seconds:.0f} s", flush=True)
    rounds = []
    with serving(args.work) as (_, app):
        for n in range(args.rounds):
            version = app.get("/api/ready").json()["model_version"]
            send_feedback(app, feedback[n * args.batch : (n + 1) * args.batch], version)
            started = time.time()  # the batch's last sample is stored
            done = retrain_once(args.work, app, [])
            rounds.append((done, stages(args.work, started, done)))
            print(f"round {n + 1}: {done['outcome']} version {done['version']}, "
                  f"{rounds[-1][1]['total']:.0f} s", flush=True)  # fmt: skip

    names = list(dict.fromkeys(name for _, found in rounds for name in found))
    print(f"\nfeedback to served, {args.batch} samples a round on {len(base)} base rows, "
          "warm start (the worker's default), seconds")  # fmt: skip
    print(f"{'stage':<26}" + "".join(f"{f'round {i + 1}':>10}" for i in range(len(rounds)))
          + f"{'median':>10}")  # fmt: skip
    for name in names:
        values = [found.get(name, 0.0) for _, found in rounds]
        print(f"{name:<26}" + "".join(f"{v:>10.1f}" for v in values)
              + f"{statistics.median(values):>10.1f}")  # fmt: skip
    median = statistics.median(found["total"] for _, found in rounds)
    outcomes = ", ".join(done["outcome"] for done, _ in rounds)
    print(
        f"median total {median:.0f} s against the target {TARGET_SECONDS} s: "
        f"{'met' if median <= TARGET_SECONDS else 'MISSED'} (outcomes: {outcomes})"
    )


if __name__ == "__main__":
    main()
