"""Learning curve: quality of the served model as feedback comes in, in rounds.

    make bench-learning      (builds everything it needs under build/bench-learning/)

As in the predecessor's 30,000-feedback experiment: a first model is trained on a small
part of train.tsv; the rest is sent through the app's API as feedback (the true tags as
the correction), in rounds; after each round the learning worker retrains, and the
served version is scored on a fixed held-out part that is never fed back. The
experiment runs twice, on the same rounds and held-out titles: with warm start (each
retrain starts from the served model's weights, the worker's default) and with cold
start (from scratch). Prints one table with both and draws
build/bench-learning/learning_curve.png (quality against feedback, both curves).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, f1_score

from contract import paths, serving_layout
from ingest import seed_tsv
from tests.model_server_process import app_server, model_server

# The blessing floors in configs.py are set for the full data set; a first model trained
# on a fifth of it can fall below them. The curve is what is measured here, so only the
# floor that stops a broken model stays, and each model must still not be worse than the
# one serving (the tolerance).
STEPS = ["--floors", "auc=0.8"]


def rows_of(path: Path) -> list[seed_tsv.Row]:
    with open(path, "rb") as f:
        return list(seed_tsv.read_rows(f, seed_tsv.ParseReport()))


def write_tsv(path: Path, rows: list[seed_tsv.Row]) -> None:
    lines = ["title\ttags"] + [f"{r.title}\t{list(r.tags)!r}" for r in rows]
    path.write_text("\n".join(lines) + "\n")


def score(models, rows: list[seed_tsv.Row]) -> dict[str, float]:
    """The served model's quality on rows, with its own decisions (batch predict)."""
    scores, decisions, names = [], [], None
    for start in range(0, len(rows), 500):
        chunk = [r.title for r in rows[start : start + 500]]
        reply = models.post(f"/v1/models/{serving_layout.MODEL_NAME}:predict", {"instances": chunk})
        for row in reply.json()["predictions"]:
            scores.append(row["scores"])
            decisions.append(row["predicted"])  # the model's own decision rule
            names = row["tags"]
    scores, decisions = np.array(scores), np.array(decisions, dtype=int)
    index = {n: i for i, n in enumerate(names)}
    y = np.zeros_like(scores, dtype=int)
    for i, r in enumerate(rows):
        for t in r.tags:
            if t in index:
                y[i, index[t]] = 1
    present = y.sum(axis=0) > 0
    return {
        "exact_match": accuracy_score(y, decisions),
        "f1_micro": f1_score(y, decisions, average="micro", zero_division=0),
        "ap_macro": average_precision_score(y[:, present], scores[:, present], average="macro"),
    }


def first_model(work: Path, rows: list[seed_tsv.Row], steps: list[str]) -> float:
    """Import rows as span 0 under work (a build directory of its own) and run the
    pipeline on it; returns the run's seconds."""
    work.mkdir(parents=True, exist_ok=True)
    write_tsv(work / "first.tsv", rows)
    env = {**os.environ, "TAGGER_BUILD_DIR": str(work)}
    subprocess.run(
        [sys.executable, "-m", "ingest", "--data-dir", str(work), "--file", "first.tsv"],
        env=env,
        check=True,
        capture_output=True,
    )
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "local_runner.py", *steps],
        env=env,
        check=True,
        cwd=paths.CHECKOUT,
        capture_output=True,
    )
    return time.monotonic() - started


@contextlib.contextmanager
def serving(work: Path):
    """The model server on work's pushed models, and the app in front of it; (models, app)."""
    served = work / "serving" / serving_layout.MODEL_NAME
    with (
        model_server(
            f"--model_name={serving_layout.MODEL_NAME}",
            f"--model_base_path={served}",
            "--file_system_poll_wait_seconds=1",
            log_dir=work,
        ) as models,
        # The bench is one trusted sender (the true tags): no rate limit, no source cap.
        app_server(
            f"--model-url=http://127.0.0.1:{models.port}",
            f"--feedback={work / 'feedback.db'}",
            f"--model-base-path={served}",
            "--feedback-burst=100000000",
            log_dir=work,
        ) as app,
    ):
        yield models, app


def send_feedback(app, rows: list[seed_tsv.Row], version: str) -> None:
    def send(row: seed_tsv.Row) -> int:
        body = {"title": row.title, "actual": list(row.tags), "model_version": version}
        return app.post("/api/feedback", body).status

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(send, rows)) == {201}


def retrain_once(
    work: Path, app, steps: list[str], cold: bool = False, checkout: Path = paths.CHECKOUT
) -> dict:
    """One step of the learning worker, as it runs (`python -m learning --once`), then the
    wait until the model server serves what it pushed; the worker's record of the batch,
    with "exited" and "served" (time.time()) added. checkout: whose code the worker and
    its pipeline run (another revision's tree, for a side-by-side bench)."""
    env = {**os.environ, "TAGGER_BUILD_DIR": str(work), "PYTHONPATH": str(checkout)}
    worker = subprocess.run(
        [
            sys.executable,
            "-m",
            "learning",
            "--every",
            "1",
            "--once",
            "--source-share",
            "1",
            "--feedback",
            str(work / "feedback.db"),
            *(["--cold-start"] * cold),
            "--",
            *steps,
        ],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    exited = time.time()
    done = json.loads(worker.stdout.strip().splitlines()[-1])
    if done["outcome"] == "blessed":
        while app.get("/api/ready").json()["model_version"] != done["version"]:
            time.sleep(0.2)
    return {**done, "exited": exited, "served": time.time()}


def experiment(args, mode: str, first, rest, held_out) -> list[dict]:
    """One run of the experiment in its own work directory: the first model, then a retrain
    per round of feedback; the served model scored after each."""
    work = args.work / mode
    first_seconds = first_model(work, first, STEPS)
    per_round = -(-len(rest) // args.rounds)  # every row fed back: the last round takes the rest
    results = []
    with serving(work) as (models, app):
        version = app.get("/api/ready").json()["model_version"]
        results.append(
            {
                "feedback": 0,
                "version": version,
                "seconds": first_seconds,
                "outcome": "first",
                **score(models, held_out),
            }
        )
        print(f"{mode}: {json.dumps(results[-1])}", flush=True)
        for n in range(args.rounds):
            send_feedback(app, rest[n * per_round : (n + 1) * per_round], version)
            started = time.time()
            done = retrain_once(work, app, STEPS, cold=mode == "cold")
            version = app.get("/api/ready").json()["model_version"]
            results.append(
                {
                    "feedback": min((n + 1) * per_round, len(rest)),
                    "version": version,
                    "outcome": done["outcome"],
                    "seconds": done["served"] - started,
                    **score(models, held_out),
                }
            )
            print(f"{mode}: {json.dumps(results[-1])}", flush=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--start", type=int, default=5000, help="rows the first model trains on")
    p.add_argument("--held-out", type=int, default=2500, help="rows never fed back")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--work", type=Path, default=paths.build_dir() / "bench-learning")
    args = p.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    rows = rows_of(paths.data_dir() / "train.tsv")
    held_out, first, rest = (
        rows[-args.held_out :],
        rows[: args.start],
        rows[args.start : -args.held_out],
    )
    curves = {mode: experiment(args, mode, first, rest, held_out) for mode in ("warm", "cold")}
    (args.work / "learning_curve.json").write_text(json.dumps(curves, indent=1))

    print(
        f"\nfirst model on {args.start} rows, then all {len(rest)} other rows fed back in "
        f"{args.rounds} rounds; scored on {len(held_out)} held-out rows never fed back; "
        "retrain s: from the round's last sample to the new version served"
    )
    columns = ("outcome", "retrain s", "exact", "F1 micro", "AP macro")
    print(f"{'':>9} " + " | ".join(f"{mode + ' start':^53}" for mode in curves))
    print(f"{'feedback':>9} " + " | ".join(" ".join(f"{c:>10}" for c in columns) for _ in curves))
    for i, r in enumerate(curves["warm"]):
        cells = []
        for mode in curves:
            m = curves[mode][i]
            cells.append(
                f"{m['outcome']:>10} {m['seconds']:>10.0f} {m['exact_match']:>10.4f} "
                f"{m['f1_micro']:>10.4f} {m['ap_macro']:>10.4f}"
            )
        print(f"{r['feedback']:>9} " + " | ".join(cells))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    for key, label, colour in (
        ("f1_micro", "F1 micro", "C0"),
        ("ap_macro", "AP macro", "C1"),
        ("exact_match", "exact match", "C2"),
    ):
        for mode, style in (("warm", "o-"), ("cold", "s--")):
            points = curves[mode]
            axes.plot(
                [r["feedback"] for r in points],
                [r[key] for r in points],
                style,
                color=colour,
                label=f"{label}, {mode} start",
            )
    axes.set_xlabel("feedback samples received")
    axes.set_ylabel(f"quality on {len(held_out)} held-out titles")
    axes.set_title("Served model quality as feedback comes in: warm and cold start")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    figure.savefig(args.work / "learning_curve.png", dpi=120)
    print(f"plot: {args.work / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
