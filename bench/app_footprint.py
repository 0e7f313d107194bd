"""The app's footprint: its environment's size, its start-up time and its memory.

    make bench-footprint        (after `make`: it serves build/serving/tagger)
    builder/env.sh run python bench/app_footprint.py --before REV

Prints, in one run, the app as it is (from its own virtualenv, serving/requirements.lock)
beside the app of an earlier commit (`--before`, by default the last one whose app ran on
the pipeline's environment), started from the pipeline environment as its image did:
- the virtualenv's installed size (`du -sh` of its prefix);
- start-up: seconds from the process start to its first answer on /api/health, and to
  its first /metrics page that has the served version's quality gauges;
- resident memory (RSS) after 1,000 requests: 990 predictions through the app and a
  /metrics scrape every 100.
Both apps talk to the same model server (serving/model_server) on the pushed model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from contract import paths, serving_layout
from tests.commands import app_python
from tests.model_server_process import free_port, model_server

BEFORE = "a72db33"  # the app imported pipeline/ (TFMA, ML Metadata) and ran on its venv
REQUESTS = 1000
SCRAPE_EVERY = 100
QUALITY_GAUGE = "stackoverflow_tagger_f1_score "


def installed_size(python: str) -> str:
    prefix = subprocess.run(
        [python, "-c", "import sys; print(sys.prefix)"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return subprocess.run(
        ["du", "-sh", prefix], check=True, capture_output=True, text=True
    ).stdout.split()[0]


def get(url: str, body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def measure(
    python: str, checkout: Path, args: list[str], titles: list[str], own_metrics_port: bool
) -> dict:
    """own_metrics_port: the app serves /metrics on --metrics-port (apps since roles and
    limits came in), not on its public port."""
    port = free_port()
    url = metrics = f"http://127.0.0.1:{port}"
    if own_metrics_port:
        metrics_port = free_port()
        metrics = f"http://127.0.0.1:{metrics_port}"
        # One client sends every request here: lift its rate limit out of the way.
        args = [*args, f"--metrics-port={metrics_port}", "--predict-burst=1000000"]
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            python,
            "-m",
            "serving.app",
            f"--port={port}",
            "--host=127.0.0.1",
            f"--feedback=sqlite:///{tmp}/feedback.db",
            *args,
        ]
        started = time.monotonic()
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(checkout),
            "TF_USE_LEGACY_KERAS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "HOME": tmp,
        }
        process = subprocess.Popen(
            argv, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while get(f"{url}/api/health")[0] != 200:
                if process.poll() is not None or time.monotonic() - started > 300:
                    raise SystemExit(f"{argv} did not start")
                time.sleep(0.02)
            first_answer = time.monotonic() - started
            while QUALITY_GAUGE not in get(f"{metrics}/metrics")[1]:
                if time.monotonic() - started > 300:
                    raise SystemExit(f"{argv}: no quality gauges within 300 s")
                time.sleep(0.05)
            first_quality = time.monotonic() - started
            for i in range(REQUESTS):
                if i % SCRAPE_EVERY == SCRAPE_EVERY - 1:
                    status, _ = get(f"{metrics}/metrics")
                else:
                    status, _ = get(f"{url}/api/predict", {"title": titles[i % len(titles)]})
                assert status == 200, status
            rss = psutil.Process(process.pid).memory_info().rss
        finally:
            process.terminate()
            process.wait(30)
    return {"first_answer": first_answer, "first_quality": first_quality, "rss": rss}


def checkout_of(rev: str, into: Path) -> Path:
    """The files of an earlier commit, unpacked (git archive) into a directory."""
    archive = into / "before.tar"
    subprocess.run(
        ["git", "-C", str(paths.CHECKOUT), "archive", "-o", str(archive), rev], check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "checkout", filter="data")
    return into / "checkout"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", default=BEFORE, help="the earlier commit to compare with")
    args = p.parse_args()
    base = paths.serving_model_dir()
    if not base.is_dir():
        print(f"app_footprint: error: no model under {base}; run `make` first", file=sys.stderr)
        return 1
    with open(paths.data_dir() / "unlabeled.tsv", encoding="utf-8") as f:
        titles = [line.strip() for line in list(f)[1:501] if line.strip()]
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        model_server(
            f"--model_name={serving_layout.MODEL_NAME}",
            f"--model_base_path={base}",
            log_dir=Path(tmp),
        ) as models,
    ):
        model_url = f"--model-url=http://127.0.0.1:{models.port}"
        old = checkout_of(args.before, Path(tmp))
        before = measure(
            sys.executable,
            old,
            [model_url, f"--metadata={paths.metadata_path()}"],
            titles,
            own_metrics_port=False,
        )
        after = measure(
            app_python(),
            paths.CHECKOUT,
            [model_url, f"--model-base-path={base}"],
            titles,
            own_metrics_port=True,
        )
        rows.append(
            (f"before ({args.before}, pipeline venv)", installed_size(sys.executable), before)
        )
        rows.append(("now (serving/requirements.lock)", installed_size(app_python()), after))
    print(f"{'app':<40} {'venv':>6} {'first answer':>13} {'first quality':>14} {'RSS':>9}")
    for name, size, m in rows:
        print(
            f"{name:<40} {size:>6} {m['first_answer']:>11.2f} s {m['first_quality']:>12.2f} s "
            f"{m['rss'] / 2**20:>6.0f} MB"
        )
    print(
        f"RSS after {REQUESTS} requests ({REQUESTS - REQUESTS // SCRAPE_EVERY} predictions, "
        f"a /metrics scrape every {SCRAPE_EVERY}); one model server for both"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
