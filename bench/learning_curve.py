"""Learning curve: quality of the served model as feedback comes in, in rounds.

    make bench-learning      (builds everything it needs under build/bench-learning/)

As in the predecessor's 30,000-feedback experiment: a first model is trained on a small
part of train.tsv; the rest is sent through the app's API as feedback (the true tags as
the correction), in rounds; after each round the learning worker retrains, and the
served version is scored on a fixed held-out part that is never fed back. Prints a
table and draws build/bench-learning/learning_curve.png (quality against feedback).
"""

from __future__ import annotations

import argparse
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
STEPS = ["--workers", "2", "--floors", "auc=0.8"]


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--start", type=int, default=5000, help="rows the first model trains on")
    p.add_argument("--held-out", type=int, default=2500, help="rows never fed back")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--cold-start", action="store_true", help="retrain from scratch each round")
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
    per_round = len(rest) // args.rounds
    write_tsv(args.work / "first.tsv", first)
    env = {**os.environ, "TAGGER_BUILD_DIR": str(args.work)}
    python = sys.executable
    subprocess.run([python, "-m", "ingest", "--data-dir", str(args.work), "--file", "first.tsv"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    started = time.monotonic()
    subprocess.run([python, "local_runner.py", *STEPS], env=env, check=True, cwd=paths.CHECKOUT)
    first_seconds = time.monotonic() - started
    serving = args.work / "serving" / serving_layout.MODEL_NAME
    feedback = args.work / "feedback.db"
    results = []
    with (
        model_server(f"--model_name={serving_layout.MODEL_NAME}", f"--model_base_path={serving}",
                     "--file_system_poll_wait_seconds=1", log_dir=args.work) as models,
        # The bench is one trusted sender (the true tags): no rate limit, no source cap.
        app_server(f"--model-url=http://127.0.0.1:{models.port}", f"--feedback={feedback}",
                   f"--model-base-path={serving}", "--feedback-burst=100000000",
                   log_dir=args.work) as app,
    ):  # fmt: skip
        version = app.get("/api/ready").json()["model_version"]
        results.append({"feedback": 0, "version": version, "seconds": first_seconds,
                        **score(models, held_out)})  # fmt: skip
        for n in range(args.rounds):
            batch = rest[n * per_round : (n + 1) * per_round]

            def send(row: seed_tsv.Row, version: str = version) -> int:
                body = {"title": row.title, "actual": list(row.tags), "model_version": version}
                return app.post("/api/feedback", body).status

            with ThreadPoolExecutor(16) as pool:
                assert set(pool.map(send, batch)) == {201}
            started = time.monotonic()
            worker = subprocess.run(
                [python, "-m", "learning", "--every", "1", "--once", "--source-share", "1",
                 "--feedback", str(feedback), *(["--cold-start"] * args.cold_start),
                 "--", *STEPS],
                env=env, cwd=paths.CHECKOUT, capture_output=True, text=True,
            )  # fmt: skip
            done = json.loads(worker.stdout.strip().splitlines()[-1])
            if done["outcome"] == "blessed":  # wait until the model server serves it
                while app.get("/api/ready").json()["model_version"] != done["version"]:
                    time.sleep(0.5)
            version = app.get("/api/ready").json()["model_version"]
            results.append({"feedback": (n + 1) * per_round, "version": version,
                            "outcome": done["outcome"], "seconds": time.monotonic() - started,
                            **score(models, held_out)})  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
    print(f"\nfirst model on {args.start} rows, {args.rounds} rounds of {per_round} feedback, "
          f"{'cold' if args.cold_start else 'warm'} start, "
          f"scored on {len(held_out)} held-out rows never fed back")  # fmt: skip
    print(f"{'feedback':>9} {'version':>11} {'outcome':>11} {'retrain s':>9} "
          f"{'exact':>7} {'F1 micro':>8} {'AP macro':>8}")  # fmt: skip
    for r in results:
        print(f"{r['feedback']:>9} {r['version']:>11} {r.get('outcome', 'first'):>11} "
              f"{r['seconds']:>9.0f} {r['exact_match']:>7.4f} {r['f1_micro']:>8.4f} "
              f"{r['ap_macro']:>8.4f}")  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for key, label in (("f1_micro", "F1 micro"), ("ap_macro", "AP macro"),
                       ("exact_match", "exact match")):  # fmt: skip
        axes.plot([r["feedback"] for r in results], [r[key] for r in results], "o-", label=label)
    axes.set_xlabel("feedback samples received")
    axes.set_ylabel(f"quality on {len(held_out)} held-out titles")
    axes.set_title("Served model quality as feedback comes in")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.work / "learning_curve.png", dpi=120)
    print(f"plot: {args.work / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
