"""TF Serving's REST paths: which model, version or label, and which API a request names.

The two patterns are TF Serving's own (http_rest_api_util.cc), case-insensitive, matched
against the raw path; the model name and label are then percent-decoded, as there.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

from contract import serving_layout
from serving.model_server.errors import invalid_argument

API_PREFIX = re.compile(r"(?i)/v1/.*")
_PREDICTION = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r":(classify|regress|predict)"
)
_MODEL_STATUS = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?"
)


@dataclasses.dataclass(frozen=True)
class Route:
    api: str  # "predict", "classify", "regress", "status" or "metadata"
    model: str
    version: int | None = None
    label: str | None = None


def parse(method: str, raw_path: str) -> Route:
    """The route for a request under /v1/; raises INVALID_ARGUMENT as TF Serving does."""
    if method == "POST":
        match = _PREDICTION.fullmatch(raw_path)
    elif method == "GET":
        match = _MODEL_STATUS.fullmatch(raw_path)
    else:
        match = None
    if match is None:
        raise invalid_argument(f"Malformed request: {method} {raw_path}")
    model, version, label, api = match.groups()
    if method == "GET":
        api = "metadata" if api else "status"
        if not model:
            raise invalid_argument("Missing model name in request.")
    else:
        api = api.lower()
    if version is not None and int(version) > serving_layout.MAX_VERSION:
        raise invalid_argument(f"Failed to convert version: {version} to numeric.")
    return Route(
        api=api,
        model=urllib.parse.unquote(model),
        version=int(version) if version is not None else None,
        label=urllib.parse.unquote(label) if label is not None else None,
    )
