"""The request log's cost on /api/predict: the same app with logging off, at the default
10 % and at 100 %, side by side in one run.

    make bench-request-log      (after `make`; serves the newest version in build/serving)

One model server; three app processes in front of it, measured in turns, single-title
predictions at concurrency 1 and 8. Client, apps and model server share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.app_speed import load, quantiles
from contract import paths, serving_layout
from ingest import seed_tsv
from tests.model_server_process import app_server, model_server

SETTINGS = (("off", None), ("10 %", "0.1"), ("100 %", "1"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="per point")
    args = p.parse_args()
    with open(paths.data_dir() / "train.tsv", "rb") as f:
        rows = list(seed_tsv.read_rows(f, seed_tsv.ParseReport()))
    titles = [{"title": r.title} for r in rows[: args.requests]]
    points: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with model_server(f"--model_name={serving_layout.MODEL_NAME}",
                          f"--model_base_path={paths.serving_model_dir()}",
                          log_dir=tmp) as models:  # fmt: skip
            for name, rate in SETTINGS:
                logging = [f"--request-log={tmp / 'log'}", f"--request-log-rate={rate}"]
                with app_server(f"--model-url=http://127.0.0.1:{models.port}",
                                f"--feedback=sqlite:///{tmp / f'{rate}.db'}",
                                "--predict-burst=100000000", *(logging if rate else []),
                                log_dir=tmp) as app:  # fmt: skip
                    url = f"http://127.0.0.1:{app.port}/api/predict"
                    for concurrency in (1, 8):
                        asyncio.run(load(url, titles[:100], concurrency))  # warm up
                        latencies, statuses = asyncio.run(load(url, titles, concurrency))
                        assert set(statuses) == {200}, set(statuses)
                        points[(name, concurrency)] = quantiles(latencies)
                        print(f"logging {name:>5}, concurrency {concurrency}: p50 "
                              f"{points[(name, concurrency)][0]:.2f} ms", flush=True)  # fmt: skip
        logged = sum(f.stat().st_size for f in (tmp / "log").glob("*.tfrecord"))
    print(f"\n/api/predict, {args.requests} single-title requests per point (ms)")
    print(f"{'logging':>8} {'c':>3} {'p50':>7} {'p99':>7}   {'vs off p50':>10} {'vs off p99':>10}")
    for concurrency in (1, 8):
        base = points[("off", concurrency)]
        for name, _ in SETTINGS:
            p50, p99 = points[(name, concurrency)]
            print(f"{name:>8} {concurrency:>3} {p50:>7.2f} {p99:>7.2f}   "
                  f"{p50 - base[0]:>+10.2f} {p99 - base[1]:>+10.2f}")  # fmt: skip
    print(f"(log files written: {logged / 1e6:.1f} MB in total)")


if __name__ == "__main__":
    main()
