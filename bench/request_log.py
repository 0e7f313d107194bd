"""The request log's cost on /api/predict: the same app with logging off, at the default
10 % and at 100 %, side by side in one run.

    make bench-request-log      (after `make`; serves the newest version in build/serving)

One model server and three app processes in front of it, all running at once; the
requests go to them in turns (ROUNDS rounds of a slice each), so that drift in the
machine's speed falls on every setting alike. Single-title predictions at concurrency 1
and 8. Client, apps and model server share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from pathlib import Path

from bench.app_speed import load, quantiles
from contract import paths, serving_layout
from ingest import seed_tsv
from tests.model_server_process import app_server, model_server

SETTINGS = (("off", None), ("10 %", "0.1"), ("100 %", "1"))
ROUNDS = 5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="per point")
    args = p.parse_args()
    with open(paths.data_dir() / "train.tsv", "rb") as f:
        rows = list(seed_tsv.read_rows(f, seed_tsv.ParseReport()))
    titles = [{"title": r.title} for r in rows[: args.requests]]
    size = len(titles) // ROUNDS
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        points = measure(tmp, titles, size)
        # The apps have closed their last files.
        logged = list((tmp / "log").rglob("*.tfrecord"))
        megabytes = sum(f.stat().st_size for f in logged) / 1e6
    print(
        f"\n/api/predict, {size * ROUNDS} single-title requests per point, in {ROUNDS} rounds (ms)"
    )
    print(f"{'logging':>8} {'c':>3} {'p50':>7} {'p99':>7}   {'vs off p50':>10} {'vs off p99':>10}")
    for concurrency in (1, 8):
        base = points[("off", concurrency)]
        for name, _ in SETTINGS:
            p50, p99 = points[(name, concurrency)]
            print(
                f"{name:>8} {concurrency:>3} {p50:>7.2f} {p99:>7.2f}   "
                f"{p50 - base[0]:>+10.2f} {p99 - base[1]:>+10.2f}"
            )
    print(f"(request log: {len(logged)} files, {megabytes:.1f} MB)")


def measure(tmp: Path, titles: list[dict], size: int) -> dict:
    """(setting, concurrency) -> (p50, p99) in ms."""
    with contextlib.ExitStack() as stack:
        models = stack.enter_context(
            model_server(
                f"--model_name={serving_layout.MODEL_NAME}",
                f"--model_base_path={paths.serving_model_dir()}",
                log_dir=tmp,
            )
        )
        urls = {}
        for name, rate in SETTINGS:
            logging = [f"--request-log={tmp / 'log' / str(rate)}", f"--request-log-rate={rate}"]
            app = stack.enter_context(
                app_server(
                    f"--model-url=http://127.0.0.1:{models.port}",
                    f"--feedback=sqlite:///{tmp / f'{rate}.db'}",
                    "--predict-burst=100000000",
                    *(logging if rate else []),
                    log_dir=tmp,
                )
            )
            urls[name] = f"http://127.0.0.1:{app.port}/api/predict"
            asyncio.run(load(urls[name], titles[:100], 4))  # warm up
        points = {}
        for concurrency in (1, 8):
            latencies: dict[str, list[float]] = {name: [] for name, _ in SETTINGS}
            for r in range(ROUNDS):
                for name, _ in SETTINGS:
                    got, statuses = asyncio.run(
                        load(urls[name], titles[r * size : (r + 1) * size], concurrency)
                    )
                    assert set(statuses) == {200}, set(statuses)
                    latencies[name] += got
            for name, _ in SETTINGS:
                points[(name, concurrency)] = quantiles(latencies[name])
            print(f"concurrency {concurrency} measured", flush=True)
        return points


if __name__ == "__main__":
    main()
