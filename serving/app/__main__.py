"""python -m serving.app [--port 8080] [--metrics-port 9102] [--model-url URL] [--feedback URL]

Identity: tokens from the feedback store by default; with --iap-audience, only requests
signed by Identity-Aware Proxy (roles from TAGGER_IAP_ROLES, JSON
{"reviewer": [emails], "operator": [emails]}). The key that hashes anonymous clients'
addresses comes from TAGGER_SOURCE_KEY, or is made once and kept in the store.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys

from aiohttp import web

from contract import paths, serving_layout
from serving.app.api import Parts, build_app, build_metrics_app
from serving.app.identity import IAP_CERTS_URL, IapSettings, Identifier
from serving.app.limits import Rate, RateLimiter
from serving.app.metrics import AppMetrics
from serving.app.model_client import ModelClient
from serving.request_log.writer import DEFAULT_RATE, MAX_BYTES, MAX_SECONDS, RequestLog
from store.database import Database
from store.feedback import REVIEW_PER_SOURCE
from store.review import ReviewQueue
from store.vocabulary import known_tags

# aiohttp's keep-alive timer starts when a connection opens and is cleared only once a
# whole request has arrived, so it is also the deadline for sending headers: a client
# that trickles them is dropped when it runs out. Behind Google's load balancer the
# balancer faces the clients, and this must outlast its 600 s keep-alive instead (the
# chart sets it), or the balancer reuses connections the app has just closed.
HEADER_TIMEOUT_S = 15.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m serving.app", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--metrics-host", default=None, help="default: --host")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=9102,
        help="/metrics, for the monitoring network only (0: none)",
    )
    p.add_argument(
        "--model-url", default=paths.model_url(), help="TF Serving's REST API (TAGGER_MODEL_URL)"
    )
    p.add_argument("--model-name", default=serving_layout.MODEL_NAME)
    p.add_argument(
        "--feedback",
        default=paths.feedback_url(),
        help="sqlite:///path or postgresql://... (TAGGER_FEEDBACK_URL)",
    )
    p.add_argument(
        "--model-base-path",
        default=paths.model_base_path(),
        help="TF Serving's base path for the model (local or gs://), where the "
        "Pusher publishes each version's quality (TAGGER_MODEL_BASE_PATH)",
    )
    p.add_argument("--model-timeout", type=float, default=5.0, help="seconds")
    p.add_argument(
        "--header-timeout",
        type=float,
        default=HEADER_TIMEOUT_S,
        help="seconds a connection may take to send a request's headers, and "
        "may stay idle between requests",
    )
    p.add_argument(
        "--iap-audience",
        default=os.environ.get("TAGGER_IAP_AUDIENCE"),
        help="accept only requests signed by IAP for this audience",
    )
    p.add_argument("--iap-certs-url", default=IAP_CERTS_URL, help="IAP's public keys")
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        help="CIDR of a proxy whose X-Forwarded-For entry names the client",
    )
    p.add_argument(
        "--proxy-hops",
        type=int,
        default=1,
        help="the client is the Nth X-Forwarded-For entry from the right",
    )
    p.add_argument("--predict-rate", type=float, default=10.0, help="per source, per second")
    p.add_argument("--predict-burst", type=int, default=40)
    p.add_argument("--feedback-rate", type=float, default=0.2, help="per source, per second")
    p.add_argument("--feedback-burst", type=int, default=20)
    p.add_argument(
        "--request-log",
        default=os.environ.get("TAGGER_REQUEST_LOG"),
        help="directory or gs:// prefix for the sampled request log, TF Serving's "
        "PredictionLog in TFRecord files (TAGGER_REQUEST_LOG; default: none)",
    )
    p.add_argument(
        "--request-log-rate", type=float, default=DEFAULT_RATE, help="share of predictions logged"
    )
    p.add_argument(
        "--request-log-max-bytes",
        type=int,
        default=MAX_BYTES,
        help="a log file is closed at this size",
    )
    p.add_argument(
        "--request-log-max-seconds",
        type=float,
        default=MAX_SECONDS,
        help="or this long after its first record",
    )
    p.add_argument(
        "--monitor-record",
        default=os.environ.get("TAGGER_MONITOR_RECORD"),
        help="the drift monitor's latest.json (file or gs://), exported as "
        "gauges (TAGGER_MONITOR_RECORD)",
    )
    p.add_argument(
        "--review-per-source",
        type=int,
        default=REVIEW_PER_SOURCE,
        help="samples of one source that may wait for review at once",
    )
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    db, known = Database(args.feedback), known_tags(paths.schema_path())
    ReviewQueue(db, known).release_known()  # tags a reviewed schema change has added
    key = os.environ.get("TAGGER_SOURCE_KEY") or db.setting(
        "source_key", lambda: secrets.token_hex(32)
    )
    iap = None
    if args.iap_audience:
        roles = IapSettings.parse_roles(os.environ.get("TAGGER_IAP_ROLES", ""))
        iap = IapSettings(args.iap_audience, roles, args.iap_certs_url)
    identifier = Identifier(db, key.encode(), iap, tuple(args.trusted_proxy), args.proxy_hops)
    limits = {
        "predict": RateLimiter(Rate(args.predict_rate, args.predict_burst)),
        "feedback": RateLimiter(Rate(args.feedback_rate, args.feedback_burst)),
    }
    request_log = None
    if args.request_log:
        request_log = RequestLog(
            args.request_log,
            args.request_log_rate,
            args.request_log_max_bytes,
            args.request_log_max_seconds,
        )
    model = ModelClient(args.model_url, args.model_name, args.model_timeout)
    metrics = AppMetrics(args.model_base_path, args.monitor_record)
    parts = Parts.of(db, known, model, metrics, request_log, args.review_per_source)
    app = build_app(parts, identifier, limits)
    sites = [(app, args.host, args.port)]
    if args.metrics_port:
        sites.append((build_metrics_app(app), args.metrics_host or args.host, args.metrics_port))
    runners = []
    for site_app, host, port in sites:
        runner = web.AppRunner(
            site_app, access_log=None, keepalive_timeout=args.header_timeout, handle_signals=False
        )
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    metrics = f", metrics on :{args.metrics_port}" if args.metrics_port else ""
    print(f"app listening on http://{args.host}:{args.port}/{metrics}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for runner in reversed(runners):  # the metrics app first; the app closes the store
            await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
