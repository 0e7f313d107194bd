"""The pipeline runs the end-to-end tests check, made once per test session.

Four runs in order (they build on each other, as a user's runs do): a first run that
trains and pushes, a second with no new data that must come from cache, a third after a
good new span 1 that trains on spans 0 and 1, and a fourth on a broken span 2 that must
stop before pushing. The model the first run pushed is kept aside for the model server's
tests, which serve the real tagger.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pytest
import tensorflow as tf

from ingest import spans
from pipeline import metadata
from tests.commands import run_module

TRAIN_ARGS = ["--train-steps", "30", "--epochs", "2", "--workers", "2"]
# A slice this small trains a weak model; the floor checks that gating runs, not quality.
FLOORS = ["--floors", "auc=0.5"]


@dataclasses.dataclass
class Runs:
    root: Path
    serving: Path
    metadata: Path
    first: str
    second: str
    third: str
    fourth_returncode: int
    fourth_output: str
    versions_after_first: list[str]
    entries_after_first: list[str]
    lineage_after_first: dict
    tree_after_first: dict[str, str]
    tree_after_second: dict[str, str]
    lineage_after_third: dict
    tree_after_third: dict[str, str]
    first_model: Path  # a copy of the SavedModel the first run pushed


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def versions(serving: Path) -> list[str]:
    model_dir = serving / "tagger"
    return sorted(p.name for p in model_dir.iterdir()) if model_dir.exists() else []


def bad_span_records() -> list[bytes]:
    """Examples whose title is an integer (wrong type) or missing altogether."""
    wrong_type = tf.train.Example(
        features=tf.train.Features(
            feature={
                "title": tf.train.Feature(int64_list=tf.train.Int64List(value=[7])),
                "tags": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"python"])),
            }
        )
    )
    missing = tf.train.Example(
        features=tf.train.Features(
            feature={"tags": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"java"]))}
        )
    )
    return [wrong_type.SerializeToString(), missing.SerializeToString()] * 50


@pytest.fixture(scope="session")
def pipeline_runs(tmp_path_factory, data_slice) -> Runs:
    root = tmp_path_factory.mktemp("e2e")
    spans_dir, serving, md = root / "spans", root / "serving", root / "metadata.sqlite"
    paths = [
        "--spans-dir", str(spans_dir), "--pipeline-root", str(root / "pipeline"),
        "--metadata", str(md), "--serving-dir", str(serving),
    ]  # fmt: skip
    ingest = ["-m", "ingest", "--spans-dir", str(spans_dir), "--span", "next"]
    run_module(*ingest, "--data-dir", str(data_slice))
    first = run_module("local_runner.py", *paths, *TRAIN_ARGS, *FLOORS).stdout
    after_first = versions(serving)
    entries_after_first = sorted(p.name for p in (serving / "tagger").iterdir())
    lineage_after_first = metadata.lineage(metadata.sqlite_store(str(md)))
    tree = tree_digest(serving)
    first_model = shutil.copytree(serving / "tagger" / after_first[0], root / "first_model")
    second = run_module("local_runner.py", *paths, *TRAIN_ARGS, *FLOORS).stdout
    tree_after_second = tree_digest(serving)

    run_module(*ingest, "--data-dir", str(data_slice), "--file", "more.tsv")
    third = run_module("local_runner.py", *paths, *TRAIN_ARGS, *FLOORS).stdout
    lineage_after_third = metadata.lineage(metadata.sqlite_store(str(md)))
    tree_after_third = tree_digest(serving)

    spans.write_span(spans_dir, 2, bad_span_records(), {"source": "broken by the test"})
    fourth = run_module("local_runner.py", *paths, *TRAIN_ARGS, *FLOORS, check=False)
    return Runs(
        root, serving, md, first, second, third, fourth.returncode,
        fourth.stdout + fourth.stderr, after_first, entries_after_first, lineage_after_first,
        tree, tree_after_second, lineage_after_third, tree_after_third, first_model,
    )  # fmt: skip
