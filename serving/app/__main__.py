"""python -m serving.app [--port 8080] [--model-url http://127.0.0.1:8501] [--feedback URL]"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web

from contract import paths, serving_layout
from serving.app.api import build_app
from serving.app.metrics import AppMetrics
from serving.app.model_client import ModelClient
from serving.feedback.store import FeedbackStore, known_tags


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--model-url", default=os.environ.get("TAGGER_MODEL_URL",
                                                         "http://127.0.0.1:8501"),
                   help="TF Serving's REST API (TAGGER_MODEL_URL)")  # fmt: skip
    p.add_argument("--model-name", default=serving_layout.MODEL_NAME)
    p.add_argument("--feedback", default=paths.feedback_url(),
                   help="sqlite:///path or postgresql://... (TAGGER_FEEDBACK_URL)")  # fmt: skip
    base_path = os.environ.get("TAGGER_MODEL_BASE_PATH") or str(paths.serving_model_dir())
    p.add_argument("--model-base-path", default=base_path,
                   help="TF Serving's base path for the model (local or gs://), where the "
                   "Pusher publishes each version's quality (TAGGER_MODEL_BASE_PATH)")  # fmt: skip
    p.add_argument("--model-timeout", type=float, default=5.0, help="seconds")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = FeedbackStore(args.feedback, known_tags(paths.schema_path()))
    app = build_app(store, ModelClient(args.model_url, args.model_name, args.model_timeout),
                    AppMetrics(args.model_base_path))  # fmt: skip
    web.run_app(app, host=args.host, port=args.port, access_log=None,
                print=lambda _: print(f"app listening on http://{args.host}:{args.port}/",
                                      flush=True))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
