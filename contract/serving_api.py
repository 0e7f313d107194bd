"""TF Serving's REST API as its clients use it: the paths, and what a status answer says.

Both the app (serving/app/model_client.py) and the rollout controller read the model
server through these; the contract itself is in tensorflow_serving/g3doc/api_rest.md.
"""

from __future__ import annotations

AVAILABLE = "AVAILABLE"


def status_path(model: str, label: str | None = None) -> str:
    """GET: the model's version status (of the version a label names, if given)."""
    return f"/v1/models/{model}" + (f"/labels/{label}" if label is not None else "")


def predict_path(model: str, version: str) -> str:
    return f"/v1/models/{model}/versions/{version}:predict"


def available_versions(status: dict) -> list[str]:
    """The AVAILABLE versions of a `GET /v1/models/<model>` answer, as listed (TF Serving
    lists the newest first)."""
    return [
        entry["version"]
        for entry in status.get("model_version_status", [])
        if entry.get("state") == AVAILABLE
    ]
