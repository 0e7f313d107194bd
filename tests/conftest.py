"""Session fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands import DATA_DIR
from tests.pipeline_runs import (  # noqa: F401 - registers the fixtures
    BACKGROUND_FIXTURES,
    first_pipeline_run,
    pipeline_background,
    pipeline_runs,
)
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that read all the pipeline runs go last: the runs are made in the
    background meanwhile (tests/pipeline_runs.py), while the other tests run."""
    items.sort(key=lambda item: "pipeline_runs" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session", autouse=True)
def _start_background_work(request) -> None:
    """Start the pipeline runs at once when any selected test needs them."""
    wanted = {name for item in request.session.items for name in item.fixturenames}
    if wanted & BACKGROUND_FIXTURES:
        request.getfixturevalue("pipeline_background")
