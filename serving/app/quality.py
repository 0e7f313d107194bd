"""The served version's offline quality: the Evaluator's metrics the Pusher publishes
beside each version (contract.serving_layout.quality_path), read from a local directory
or from a gs:// base path. The app needs neither TFMA nor ML Metadata for them.
"""

from __future__ import annotations

import dataclasses
import functools

from contract import serving_layout

GCS = "gs://"
READ_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True)
class Quality:
    metrics: dict[str, float]  # the Evaluator's overall metrics, by TFMA name
    pushed_at: float  # Unix time


@functools.cache
def _storage_client():
    """The Cloud Storage client (credentials from the environment, as on GKE)."""
    from google.cloud import storage

    return storage.Client()


def _read(path: str) -> bytes | None:
    if not path.startswith(GCS):
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
    from google.api_core import exceptions

    bucket, _, name = path.removeprefix(GCS).partition("/")
    try:
        blob = _storage_client().bucket(bucket).blob(name)
        return blob.download_as_bytes(timeout=READ_TIMEOUT_S)
    except exceptions.NotFound:
        return None


def read_published(base_path: str, version: str) -> Quality | None:
    """What the Pusher published for this version, or None when it published nothing.
    A file that exists but cannot be parsed is an error: it says the Pusher is broken."""
    data = _read(serving_layout.quality_path(base_path, version))
    if data is None:
        return None
    return Quality(*serving_layout.read_quality_record(data))
