"""The app's speed: feedback ingest and predictions through the whole app path.

    make bench-app      (after `make`; serves the newest version in build/serving/tagger)

1. 30,000 feedback entries (the predecessor paper's experiment size) from 32 concurrent
   clients, stored in SQLite and then in a PostgreSQL server started for the run: the
   rate, and stored == acknowledged (nothing lost).
2. Single-title predictions, p50 and p99 at concurrency 1 and 32: through the app
   (validation, TF Serving REST call, ranking), next to the model server alone.
Client, app and model server share this machine's cores; the client is asyncio aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from contract import paths, serving_layout
from ingest import seed_tsv
from tests.model_server_process import app_server, model_server
from tests.postgres_server import postgres_server


async def load(url: str, bodies: list[dict], concurrency: int) -> tuple[list[float], list[int]]:
    """POST every body, `concurrency` at a time; (latencies in s, statuses)."""
    latencies, statuses = [], []
    queue = iter(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def client() -> None:
            for body in queue:
                started = time.perf_counter()
                async with http.post(url, json=body) as reply:
                    await reply.read()
                    statuses.append(reply.status)
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, statuses


def quantiles(latencies: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(latencies, n=100)
    return q[49] * 1e3, q[98] * 1e3


def stored(url: str) -> int:
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url) as db:
            return db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
    return (
        sqlite3.connect(url.removeprefix("sqlite:///"))
        .execute("SELECT COUNT(*) FROM feedback")
        .fetchone()[0]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feedback", type=int, default=30_000)
    p.add_argument("--requests", type=int, default=2000, help="per prediction point")
    args = p.parse_args()
    with open(paths.data_dir() / "train.tsv", "rb") as f:
        rows = list(seed_tsv.read_rows(f, seed_tsv.ParseReport()))
    bodies = [
        {
            "title": rows[i % len(rows)].title,
            "actual": list(rows[i % len(rows)].tags),
            "model_version": "1",
        }
        for i in range(args.feedback)
    ]
    titles = [{"title": r.title} for r in rows[: args.requests]]
    model_path = f"/v1/models/{serving_layout.MODEL_NAME}:predict"
    report = []
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as pg:
        tmp = Path(tmp)
        with model_server(
            f"--model_name={serving_layout.MODEL_NAME}",
            f"--model_base_path={paths.serving_model_dir()}",
            log_dir=tmp,
        ) as models:
            model_url = f"http://127.0.0.1:{models.port}"
            for kind, store_url in (
                ("SQLite", f"sqlite:///{tmp / 'f.db'}"),
                ("PostgreSQL", pg.url),
            ):
                # One client machine sends everything: its rate limits are lifted, so
                # this measures the path, not the limiter.
                unlimited = ("--feedback-burst=100000000", "--predict-burst=100000000")
                with app_server(
                    f"--model-url={model_url}", f"--feedback={store_url}", *unlimited, log_dir=tmp
                ) as app:
                    url = f"http://127.0.0.1:{app.port}"
                    started = time.perf_counter()
                    latencies, statuses = asyncio.run(load(f"{url}/api/feedback", bodies, 32))
                    seconds = time.perf_counter() - started
                    acknowledged = statuses.count(201)
                    report.append(
                        f"feedback, {kind:<10}: {len(bodies)} posted by 32 clients in "
                        f"{seconds:.1f} s = {len(bodies) / seconds:,.0f}/s; acknowledged "
                        f"{acknowledged}, stored {stored(store_url)}, p50 "
                        f"{quantiles(latencies)[0]:.1f} ms"
                    )
                    print(report[-1], flush=True)
                    if kind == "SQLite":
                        points = {}
                        for c in (1, 32):
                            for name, target, body in (
                                ("app", f"{url}/api/predict", titles),
                                (
                                    "model server",
                                    f"{model_url}{model_path}",
                                    [{"instances": [t["title"]]} for t in titles],
                                ),
                            ):
                                asyncio.run(load(target, body[:100], c))  # warm up
                                lat, st = asyncio.run(load(target, body, c))
                                assert set(st) == {200}, set(st)
                                points[(name, c)] = quantiles(lat)
    print("\n" + "\n".join(report))
    print(f"\nsingle-title predictions, {args.requests} per point (ms)")
    print(
        f"{'concurrency':>11} {'app p50':>9} {'app p99':>9} {'server p50':>11} {'server p99':>11}"
    )
    for c in (1, 32):
        a, s = points[("app", c)], points[("model server", c)]
        print(f"{c:>11} {a[0]:>9.2f} {a[1]:>9.2f} {s[0]:>11.2f} {s[1]:>11.2f}")
    print("(the seed's own inference service answered one title in about 11 ms)")


if __name__ == "__main__":
    main()
