"""Session fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands import DATA_DIR
from tests.pipeline_runs import pipeline_runs  # noqa: F401 - registers the fixture
from tests.tagger_model import build_tagger_model


@pytest.fixture(scope="session")
def data_slice(tmp_path_factory) -> Path:
    """The first 600 rows of the shared train.tsv as train.tsv, the next 300 as more.tsv."""
    source = DATA_DIR / "train.tsv"
    if not source.exists():
        pytest.fail(f"{source} is missing: set TAGGER_DATA_DIR (see README)")
    out = tmp_path_factory.mktemp("slice")
    with open(source, "rb") as f:
        lines = [next(f) for _ in range(901)]  # header + 900 rows
    (out / "train.tsv").write_bytes(b"".join(lines[:601]))
    (out / "more.tsv").write_bytes(lines[0] + b"".join(lines[601:]))
    return out


@pytest.fixture(scope="session")
def tagger_model(tmp_path_factory, data_slice) -> Path:
    """A real tagger SavedModel (tests/tagger_model.py), built once for the serving tests."""
    return build_tagger_model(data_slice / "train.tsv", tmp_path_factory.mktemp("tagger") / "1")
