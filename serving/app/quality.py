"""The served version's offline quality: the Evaluator's metrics the Pusher publishes
beside each version (contract.serving_layout.quality_path), read from a local directory
or from a gs:// base path. The app needs neither TFMA nor ML Metadata for them.
"""

from __future__ import annotations

import dataclasses

from contract import serving_layout
from store import objects


@dataclasses.dataclass(frozen=True)
class Quality:
    metrics: dict[str, float]  # the Evaluator's overall metrics, by TFMA name
    pushed_at: float  # Unix time


def read_published(base_path: str, version: str) -> Quality | None:
    """What the Pusher published for this version, or None when it published nothing.
    A file that exists but cannot be parsed is an error: it says the Pusher is broken."""
    data = objects.read(serving_layout.quality_path(base_path, version))
    if data is None:
        return None
    return Quality(*serving_layout.read_quality_record(data))
