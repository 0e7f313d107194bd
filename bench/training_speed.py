"""Speed: the Trainer's Keras fit, time per training title per epoch, beside a reference.

    make bench-training            (after `make`: reads build/'s latest Transform output)
    make bench-training ARGS="--before 551d596 --epochs 3"

Both sides train the default setting's network (its reviewed hyperparameters, batch size
and seed) with their own revision's modules/, as that revision's Trainer fits it, on the
same transformed train split, each in a process of its own, one after the other. The
reference is the revision given by --before (default: the network as it was before its
training was made lazy). Prints, side by side, seconds per epoch and microseconds per
training title per epoch (the median over the epochs after the first, which also traces
the graph), and their ratio; the full log is in build/bench-training/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = "551d596"
ROOT = Path(__file__).resolve().parent.parent
# What a revision's network and Trainer need from its tree.
CODE = ("contract", "modules", "hyperparameters")


def latest(pattern: str, root: Path) -> Path:
    found = sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        sys.exit(f"no {pattern} under {root}: run `make` first")
    return found[-1]


def fit_and_time(transform: Path, epochs: int) -> dict:
    """In the revision's process: fit its network and time each epoch."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tensorflow_transform as tft

    from contract import features, paths
    from modules import trainer

    graph = latest("transform_graph/*", transform)
    examples = latest("transformed_examples/*", transform) / "Split-train"
    reviewed = json.loads(paths.hyperparameters_file(encoder=False).read_text())["values"]
    hp = {**trainer.TRAINING, **reviewed}
    tf.keras.utils.set_random_seed(hp["seed"])
    spec = tft.TFTransformOutput(str(graph)).transformed_feature_spec()

    def parse(batch):
        made = tf.io.parse_example(batch, spec)
        return {name: made[name] for name in features.MODEL_INPUTS}, made[features.LABEL]

    files = sorted(str(p) for p in examples.glob("*.gz"))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    rows = sum(1 for _ in records)  # also warms the page cache for both sides alike
    train = (
        records.shuffle(rows, seed=hp["seed"])
        .batch(hp["batch_size"])
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )

    class EpochTimes(tf.keras.callbacks.Callback):
        seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    net = trainer.build_model(hp)
    args = {"epochs": epochs + 1, "callbacks": [EpochTimes()], "verbose": 0}
    if hasattr(trainer, "fit"):  # the revision's Trainer fits through it
        trainer.fit(net, train, hp, **args)
    else:
        net.fit(train, **args)
    later = EpochTimes.seconds[1:]
    return {"rows": rows, "epoch_seconds": EpochTimes.seconds, "median": statistics.median(later)}


def run_side(code: Path, transform: Path, epochs: int, log) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, __file__, "--side", "--transform", str(transform)]
    command += ["--epochs", str(epochs)]
    done = subprocess.run(command, env=env, cwd=code, stdout=subprocess.PIPE, stderr=log)
    if done.returncode:
        sys.exit(f"the side in {code} failed (exit {done.returncode}); see {log.name}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=REFERENCE, help="the reference revision")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per side")
    parser.add_argument("--transform", type=Path, default=None, help="a Transform output")
    parser.add_argument("--side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(fit_and_time(args.transform, args.epochs)))
        return

    transform = args.transform or ROOT / "build" / "pipeline" / "Transform"
    out = ROOT / "build" / "bench-training"
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.log"
    print(f"full log in {log_path}")
    results = {}
    with open(log_path, "w") as log, tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, *CODE],
            stdout=subprocess.PIPE,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        for name, code in ((f"before ({args.before})", Path(tree)), ("now", ROOT)):
            started = time.perf_counter()
            results[name] = run_side(code, transform, args.epochs, log)
            print(f"{name:<20} fitted in {time.perf_counter() - started:.0f} s", flush=True)

    (before, now) = results.values()
    print(f"\ntrain split: {now['rows']} titles, {args.epochs} timed epochs per side")
    print(f"{'':<20} {'s/epoch':>8} {'µs/title/epoch':>15}")
    for name, result in results.items():
        per_title = result["median"] / result["rows"] * 1e6
        print(f"{name:<20} {result['median']:>8.2f} {per_title:>15.0f}")
    print(f"{'speed-up':<20} {before['median'] / now['median']:>7.2f}x   target >= 3x")
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
