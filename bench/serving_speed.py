"""Model server speed: the tagger over loopback HTTP against the in-process model call.

    make bench-serving      (after `make`; serves the newest version in build/serving/tagger)

Prints, in one run and for each model measured (`--against LABEL=BASE_PATH` adds one,
then a side-by-side table ends the report): sequential single-title latency (p50, p99)
over one keep-alive connection; throughput in titles/s at concurrency 1, 8 and 64 (each
client sends one title per request), with batching off and on; and, alongside, the
model's own throughput called in this process at batch sizes 1, 8 and 64 (the limit on
this machine), with TensorFlow's defaults: the server starts with oneDNN's graph rewrites
off (serving/model_server/__main__.py), this process with them on. Targets: p50 <= 3 ms;
concurrency 64 with batching >= half of the in-process batch-64 throughput. Titles come
from unlabeled.tsv (live-traffic stand-in).

The load comes from wrk (Debian's package, in the environment's root): an asyncio
client spent about 120 us of CPU per request, a third of the server's, on the same
two cores, so it measured the client as much as the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import tensorflow as tf

from contract import paths, serving_layout
from modules import encoder
from serving.model_server.versions import list_versions
from tests.model_server_process import model_server

# TensorFlow's thread pools, the same for the server and the in-process reference. On
# these 2-core machines one intra-op thread is faster than the default at every batch
# size (measured: 43.7k vs 30.8k titles/s at batch 64 in process).
THREADS = {"intra": 1, "inter": 2}
# The batching parameters TF Serving is deployed with (compose and the chart): one batch
# thread and a 1 ms timeout beat 2 threads and 2 ms on 2 cores (6.6k vs 6.1k requests/s
# at concurrency 64), and 0 or 0.5 ms (6.2k, 6.5k).
BATCHING = Path(__file__).resolve().parent.parent / "deploy" / "serving" / "batching.config"
PREDICT = f"/v1/models/{serving_layout.MODEL_NAME}:predict"
# wrk sends the request bodies of a file, one per line, in turn on each connection.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
function request()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def titles(n: int) -> list[str]:
    with open(paths.data_dir() / "unlabeled.tsv", encoding="utf-8") as f:
        next(f)
        return [line.rstrip("\n") for _, line in zip(range(n), f, strict=False)]


def sequential_latency(port: int, sample: list[str]) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    for title in sample:
        body = json.dumps({"instances": [title]})
        started = time.perf_counter()
        conn.request("POST", PREDICT, body=body)
        reply = conn.getresponse()
        reply.read()
        times.append(time.perf_counter() - started)
        assert reply.status == 200
    conn.close()
    times = times[len(times) // 10 :]  # drop the first tenth: connection and caches warm up
    q = statistics.quantiles(times, n=100)
    return q[49] * 1e3, q[98] * 1e3


def throughput(
    port: int, script: Path, bodies: Path, concurrency: int, seconds: int
) -> tuple[float, int, float]:
    """Titles/s, requests made and wrk's CPU seconds, with `concurrency` connections."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", str(script)]
        + [f"http://127.0.0.1:{port}{PREDICT}", "--", str(bodies)],
        capture_output=True,
        text=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = run.stdout
    if run.returncode or "Non-2xx" in report or "Socket errors" in report:
        sys.exit(f"wrk failed, or requests failed under load:\n{report}{run.stderr}")
    requests = int(re.search(r"(\d+) requests in", report).group(1))
    rate = float(re.search(r"Requests/sec:\s*([\d.]+)", report).group(1))
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return rate, requests, cpu


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def in_process(model_dir: Path, sample: list[str], batch: int, seconds: float) -> float:
    encoder.register_ops()  # as the model server does, for a model made with the encoder
    serve = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    serve(title=tf.constant(sample[:batch]))  # warm up
    rows, started = 0, time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        chunk = [sample[(i + j) % len(sample)] for j in range(batch)]
        out = serve(title=tf.constant(chunk))
        out["scores"].numpy()
        rows += batch
        i += batch
    return rows / (time.perf_counter() - started)


def measure(newest: Path, sample: list[str], args, tmp: Path) -> tuple[dict, dict]:
    """HTTP results per batching mode and in-process titles/s per batch size, for the
    version directory newest (the server serves its base path, where it is newest)."""
    levels = (1, 8, 64)
    results: dict[str, dict] = {}
    for mode, extra in (
        ("off", []),
        ("on", ["--enable_batching", f"--batching_parameters_file={BATCHING}"]),
    ):
        with model_server(
            f"--model_name={serving_layout.MODEL_NAME}",
            f"--model_base_path={newest.parent}",
            f"--tensorflow_intra_op_parallelism={THREADS['intra']}",
            f"--tensorflow_inter_op_parallelism={THREADS['inter']}",
            *extra,
            log_dir=tmp,
        ) as server:
            process = psutil.Process(server.process.pid)
            row = {"rss_start": process.memory_info().rss}
            if mode == "off":
                row["p50"], row["p99"] = sequential_latency(server.port, sample[: args.requests])
            for c in levels:
                server_cpu = cpu_seconds(process)
                row[c], requests, client_cpu = throughput(
                    server.port, tmp / "post.lua", tmp / "bodies.jsonl", c, args.seconds
                )
                row[f"cpu{c}"] = (
                    (cpu_seconds(process) - server_cpu) / requests * 1e6,
                    client_cpu / requests * 1e6,
                )
            row["rss_end"] = process.memory_info().rss
            results[mode] = row
    local = {b: in_process(newest, sample, b, args.seconds) for b in levels}
    return results, local


def newest_version(base_path: Path) -> Path:
    on_disk = list_versions(base_path)
    if not on_disk:
        sys.exit(f"no model version under {base_path}: run `make` first")
    return on_disk[max(on_disk)]


def report(newest: Path, results: dict, local: dict, seconds: int) -> None:
    levels = (1, 8, 64)
    print(
        f"model {newest}, {os.cpu_count()} cores, {seconds:.0f} s per point, "
        f"TensorFlow intra/inter-op threads {THREADS['intra']}/{THREADS['inter']}"
    )
    p50, p99 = results["off"]["p50"], results["off"]["p99"]
    print(
        f"sequential single-title latency over HTTP: p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        f"   (target p50 <= 3 ms; seed service ~11 ms)  {'met' if p50 <= 3 else 'NOT met'}"
    )
    print(
        f"\n{'concurrency':>11} {'HTTP, no batching':>18} {'HTTP, batching':>15} "
        f"{'in-process, batch = concurrency':>32}   (titles/s)"
    )
    for c in levels:
        print(f"{c:>11} {results['off'][c]:>18.0f} {results['on'][c]:>15.0f} {local[c]:>32.0f}")
    print("\nCPU per request, server / wrk (us), on this machine's 2 cores:")
    for c in levels:
        off, on = results["off"][f"cpu{c}"], results["on"][f"cpu{c}"]
        print(
            f"{c:>11}   no batching {off[0]:>5.0f} / {off[1]:>5.0f}"
            f"   batching {on[0]:>5.0f} / {on[1]:>5.0f}"
        )
    ratio = results["on"][64] / local[64]
    print(
        f"\nconcurrency 64 with batching / in-process batch 64: {ratio:.2f}"
        f"   (target >= 0.50)  {'met' if ratio >= 0.5 else 'NOT met'}"
    )
    for mode in ("off", "on"):
        r = results[mode]
        print(
            f"server RSS, batching {mode}: {r['rss_start'] / 2**20:.0f} MB at start, "
            f"{r['rss_end'] / 2**20:.0f} MB after the run"
        )


def side_by_side(measured: dict[str, tuple[Path, dict, dict]]) -> None:
    """One column per model: what a reader compares first."""
    width = max(14, *(len(label) for label in measured)) + 2
    print(
        "\nside by side"
        + " " * (30 - len("side by side"))
        + "".join(f"{label:>{width}}" for label in measured)
    )
    rows = (
        ("one title over HTTP, p50 (ms)", lambda r, _: r["off"]["p50"], ".2f"),
        ("one title over HTTP, p99 (ms)", lambda r, _: r["off"]["p99"], ".2f"),
        ("HTTP, 64 clients, batching (/s)", lambda r, _: r["on"][64], ".0f"),
        ("in process, batch 64 (titles/s)", lambda _, local: local[64], ".0f"),
        ("in process, batch 1 (titles/s)", lambda _, local: local[1], ".0f"),
    )
    for name, value, spec in rows:
        print(
            f"{name:<30}"
            + "".join(f"{value(r, local):>{width}{spec}}" for _, r, local in measured.values())
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-path", type=Path, default=paths.serving_model_dir())
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="LABEL=BASE_PATH",
        help="also measure the newest version under BASE_PATH (a model base path, as "
        "--base-path), and print the models side by side; repeatable",
    )
    parser.add_argument("--label", default="served", help="the --base-path model's column")
    parser.add_argument("--seconds", type=int, default=5, help="per throughput point")
    parser.add_argument("--requests", type=int, default=2000, help="sequential latency sample")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: the environment's root has it; elsewhere `apt-get install wrk`")
    models = {args.label: args.base_path}
    for pair in args.against:
        label, _, base = pair.partition("=")
        if not base:
            sys.exit(f"--against wants LABEL=BASE_PATH, got {pair!r}")
        models[label] = Path(base)
    newest = {label: newest_version(base) for label, base in models.items()}  # or exit now
    sample = titles(max(args.requests, 4096))
    tf.config.threading.set_intra_op_parallelism_threads(THREADS["intra"])
    tf.config.threading.set_inter_op_parallelism_threads(THREADS["inter"])

    measured: dict[str, tuple[Path, dict, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "post.lua").write_text(WRK_SCRIPT)
        (tmp / "bodies.jsonl").write_text(
            "".join(json.dumps({"instances": [t]}) + "\n" for t in sample)
        )
        for label, version in newest.items():
            measured[label] = (version, *measure(version, sample, args, tmp))
    for label, (newest, results, local) in measured.items():
        print(f"\n== {label}")
        report(newest, results, local, args.seconds)
    if len(measured) > 1:
        side_by_side(measured)


if __name__ == "__main__":
    main()
