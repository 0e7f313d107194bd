"""TF Serving's model directory layout: `<base>/<model>/<integer version>/`.

One rule for both sides: the AtomicPusher writes versions by it, the model server
(serving/model_server) reads them by it, and the app reads each version's quality file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

MODEL_NAME = "tagger"  # the TF Serving model name: <serving base>/<MODEL_NAME>/<version>/
MAX_VERSION = 2**63 - 1  # versions are int64 in TF Serving


def version_number(name: str) -> int | None:
    """The version a directory name stands for, or None: only integer names are versions."""
    if name.isascii() and name.isdigit() and int(name) <= MAX_VERSION:
        return int(name)
    return None


def versions(names: Iterable[str]) -> dict[int, str]:
    """The versions among a base path's entries: number -> entry name, oldest first.
    `names` as any listing gives them: object stores and TensorFlow's gfile end
    directories with '/'."""
    found = {}
    for name in (n.rstrip("/") for n in names):
        number = version_number(name)
        if number is not None:
            found[number] = name
    return dict(sorted(found.items()))


def staging_name(version: int) -> str:
    """Where a version is copied before one rename publishes it: never a version name."""
    return f".incoming-{version}"


QUALITY_DIR = "quality"


def quality_path(base_directory: str, version: str | int) -> str:
    """The Evaluator's headline metrics of a pushed version, beside the versions (a
    non-integer name, so no model server takes it for one): <base>/quality/<version>.json.
    The app reads them here, so it needs no ML Metadata store."""
    return f"{base_directory.rstrip('/')}/{QUALITY_DIR}/{version}.json"


def quality_record(version: str, metrics: dict[str, float], pushed_at: float) -> str:
    """The quality file's text, as the Pusher writes it."""
    return json.dumps({"version": version, "pushed_at": pushed_at, "metrics": metrics}, indent=1)


def read_quality_record(text: str | bytes) -> tuple[dict[str, float], float]:
    """(metrics by TFMA name, push time) from a quality file's text."""
    record = json.loads(text)
    return {str(k): float(v) for k, v in record["metrics"].items()}, float(record["pushed_at"])


ROLLOUT_DIR = "rollout"


def rollout_path(base_directory: str, version: str | int) -> str:
    """What happened to a version once pushed (served as canary, promoted, rolled back),
    written by the rollout controller beside the versions for the lineage command:
    <base>/rollout/<version>.json, a JSON list of events."""
    return f"{base_directory.rstrip('/')}/{ROLLOUT_DIR}/{version}.json"
