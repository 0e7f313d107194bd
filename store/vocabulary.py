"""The tags the model is trained on: the curated schema's `tags` domain."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from contract import features


def known_tags(schema_path: Path) -> frozenset[str]:
    schema = text_format.Parse(schema_path.read_text(), schema_pb2.Schema())
    (domain,) = [d for d in schema.string_domain if d.name == features.TAGS]
    return frozenset(domain.value)
