"""Releases from the command line.

    python -m serving.rollout run --model-base-path DIR --config-file FILE ...
        the controller: a loop that starts, promotes and rolls back canaries
    python -m serving.rollout status
    python -m serving.rollout promote [--reason TEXT]
    python -m serving.rollout rollback --reason TEXT

status, promote and rollback go through the app's API (--app, TAGGER_APP_URL) with an
operator's token (TAGGER_TOKEN), so the app decides who may, in one place, and records
who did. `run` needs the feedback store, the model server and the app's /metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.request

from contract import paths, serving_layout
from serving.rollout import checks
from serving.rollout.controller import Controller, Settings, parse_stages
from store.database import Database


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m serving.rollout", description=__doc__.split("\n")[0]
    )
    p.add_argument("--app", default=os.environ.get("TAGGER_APP_URL", "http://127.0.0.1:8080"))
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="stable, canary, stage and the latest events")
    promote = commands.add_parser("promote", help="make the canary stable now")
    promote.add_argument("--reason")
    rollback = commands.add_parser("rollback", help="withdraw the canary and reject it")
    rollback.add_argument("--reason", required=True)
    run = commands.add_parser("run", help="the controller")
    run.add_argument("--feedback", default=paths.feedback_url())
    run.add_argument("--model-name", default=serving_layout.MODEL_NAME)
    run.add_argument("--model-base-path", default=paths.model_base_path())
    run.add_argument("--config-file", required=True, help="the model config TF Serving polls")
    run.add_argument("--model-url", default=paths.model_url())
    run.add_argument(
        "--app-metrics",
        action="append",
        required=True,
        help="an app replica's /metrics URL (repeat for each)",
    )
    run.add_argument("--monitor-record", help="the drift monitor's latest record (file or gs://)")
    run.add_argument(
        "--stages",
        default="shadow,0.1,0.5",
        help="'shadow' or a canary share, in order; then promotion",
    )
    run.add_argument("--stage-seconds", type=float, default=300.0)
    run.add_argument("--grace-seconds", type=float, default=30.0)
    run.add_argument("--every", type=float, default=10.0, help="seconds between ticks")
    run.add_argument("--min-requests", type=int, default=checks.Limits.min_requests)
    run.add_argument("--min-feedback", type=int, default=checks.Limits.min_feedback)
    run.add_argument("--min-comparisons", type=int, default=checks.Limits.min_comparisons)
    return p


def _api(args, method: str, path: str, body: dict | None = None) -> dict:
    token = os.environ.get("TAGGER_TOKEN", "")
    request = urllib.request.Request(
        f"{args.app.rstrip('/')}{path}",
        method=method,
        data=json.dumps(body or {}).encode() if method == "POST" else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as err:
        message = json.loads(err.read() or b"{}").get("error", err.reason)
        raise SystemExit(f"rollout: {err.code}: {message}") from None
    except OSError as err:
        raise SystemExit(f"rollout: the app at {args.app} did not answer: {err}") from None


def _run(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    limits = checks.Limits(
        min_requests=args.min_requests,
        min_feedback=args.min_feedback,
        min_comparisons=args.min_comparisons,
    )
    settings = Settings(
        model=args.model_name,
        base_path=args.model_base_path,
        config_path=args.config_file,
        model_url=args.model_url,
        metrics_urls=args.app_metrics,
        monitor_record=args.monitor_record,
        stages=parse_stages(args.stages),
        stage_s=args.stage_seconds,
        grace_s=args.grace_seconds,
        limits=limits,
    )
    db = Database(args.feedback)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"rollout controller: {settings.base_path} -> {settings.config_path}", flush=True)
    try:
        Controller(settings, db).run(args.every, stop)
    finally:
        db.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "status":
        result = _api(args, "GET", "/api/rollout")
    elif args.command == "promote":
        result = _api(
            args, "POST", "/api/rollout:promote", {"reason": args.reason} if args.reason else {}
        )
    else:
        result = _api(args, "POST", "/api/rollout:rollback", {"reason": args.reason})
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
