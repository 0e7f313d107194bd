"""The curated schema is valid, matches the shared feature names and serves without tags."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from contract import features

SCHEMA = Path(__file__).resolve().parent.parent / "schema" / "schema.pbtxt"


def load() -> schema_pb2.Schema:
    return text_format.Parse(SCHEMA.read_text(), schema_pb2.Schema())


def test_schema_names_the_shared_features():
    names = {f.name for f in load().feature}
    assert names == {features.TITLE, features.TAGS}


def test_tag_domain_size_is_num_tags_and_every_tag_is_well_formed():
    (domain,) = [d for d in load().string_domain if d.name == "tags"]
    assert len(domain.value) == len(set(domain.value)) == features.NUM_TAGS
    assert all(features.TAG_PATTERN.match(t) for t in domain.value)


def test_tags_are_absent_from_the_serving_environment():
    (tags,) = [f for f in load().feature if f.name == features.TAGS]
    assert list(tags.not_in_environment) == ["SERVING"]
