"""The whole online side on this machine: python -m serving.up   (make up)

Starts the model server (TF Serving's REST API on the pushed models), the app (API and
page) and the learning worker, each logging to build/logs/, and prints the page's URL.
Ctrl-C (or SIGTERM) stops all three; if one of them dies, the others are stopped too.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from contract import paths, serving_layout

GRACE_SECONDS = 30


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--app-port", type=int, default=8080)
    p.add_argument("--model-port", type=int, default=8501)
    p.add_argument("--metrics-port", type=int, default=9102, help="the app's /metrics")
    p.add_argument("--every", type=int, default=100, help="retrain after this many samples")
    args = p.parse_args(argv)
    if not paths.serving_model_dir().is_dir():
        print(
            f"up: error: no model under {paths.serving_model_dir()}; run `make` first",
            file=sys.stderr,
        )
        return 1
    logs = paths.logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    # The app runs from its own virtualenv where the builder made one (no training stack),
    # as its image runs it.
    app_python = os.environ.get("TAGGER_APP_PYTHON") or python
    commands = {
        "model_server": [
            python,
            "-m",
            "serving.model_server",
            f"--rest_api_port={args.model_port}",
            "--rest_api_host=127.0.0.1",
            f"--model_name={serving_layout.MODEL_NAME}",
            f"--model_base_path={paths.serving_model_dir()}",
        ],
        "app": [
            app_python,
            "-m",
            "serving.app",
            f"--port={args.app_port}",
            f"--metrics-port={args.metrics_port}",
            f"--model-url=http://127.0.0.1:{args.model_port}",
        ],
        "worker": [python, "-m", "learning", f"--every={args.every}"],
    }
    children = {}
    for name, command in commands.items():
        log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - open for the child's life
        # Each in its own session: Ctrl-C reaches this supervisor only, which stops them in
        # order (the worker takes its pipeline run down with it).
        children[name] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    print(f"model server :{args.model_port}, app :{args.app_port}, worker; logs in {logs}")
    print(f"open http://127.0.0.1:{args.app_port}/   (Ctrl-C stops all three)")
    print(
        "review queue: sign in on the page with a token from `builder/env.sh run python -m "
        "serving.feedback token create --role reviewer --name NAME`",
        flush=True,
    )
    stopping = []
    for number in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: it may arrive ignored
        signal.signal(number, lambda signum, _: stopping.append(signum))
    status = 0
    while not stopping:
        dead = [n for n, c in children.items() if c.poll() is not None]
        if dead:
            print(
                f"up: {dead[0]} exited {children[dead[0]].returncode}; see "
                f"{logs / (dead[0] + '.log')}",
                file=sys.stderr,
            )
            status = 1
            break
        time.sleep(0.2)
    for name in ("app", "worker", "model_server"):
        child = children[name]
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    print("stopped model server, app and worker")
    return status


if __name__ == "__main__":
    sys.exit(main())
