"""The pipeline runs the end-to-end tests check, made once per test session.

Five runs in order, each through `python local_runner.py` as a user runs it, building on
each other: a first run that trains and pushes; a second with no new data that must
come from cache; a third after a good new span 1 that reads spans 0 and 1; a fourth
after a broken span 2 that must stop before Transform; a fifth told to read spans 0-1
only, which tunes (two tiny trials) and trains again while span 2 stays broken on disk,
with the encoder setting on (ENCODER_RUN).

They run in a background thread from the start of the session (conftest.py), and the
tests that read them run last; the learning loop starts from a copy of the state the
first run leaves (first_pipeline_run), instead of training the same model again.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import tensorflow as tf

from ingest import spans
from tests.commands import run_module

TRAIN_ARGS = ["--train-steps", "30", "--epochs", "2", "--workers", "0"]
# A slice this small trains a weak model; the floor checks that gating runs, not quality.
FLOORS = ["--floors", "auc=0.5"]
TUNE_ARGS = ["--tune", "2", "--tune-epochs", "1"]
# The run (0-based) made with --encoder. The others run without it, the default.
ENCODER_RUN = 4


@dataclasses.dataclass
class Runs:
    root: Path
    spans: Path
    serving: Path
    metadata: Path
    outputs: list[subprocess.CompletedProcess]
    trees: list[dict[str, str]]  # the serving tree after each run


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def bad_span_records() -> list[bytes]:
    """Examples with no title, and examples with a tag outside the schema's domain."""

    def example(**values: list[bytes]) -> bytes:
        feature = {
            k: tf.train.Feature(bytes_list=tf.train.BytesList(value=v)) for k, v in values.items()
        }
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    no_title = example(tags=[b"java"])
    unknown_tag = example(title=[b"How to fold proteins"], tags=[b"biology"])
    return [no_title, unknown_tag] * 50


# A hang guard for one pipeline run on a slice: a run takes one to two minutes on an
# idle machine of the README's size; this allows for one several times slower.
RUN_TIMEOUT = 900


@dataclasses.dataclass
class FirstRun:
    """A copy of the store, spans and serving directory right after the first run, for a
    test module that starts where that run ends (the learning loop)."""

    spans: Path
    metadata: Path
    serving: Path


def make_runs(root: Path, data_slice: Path, first: concurrent.futures.Future) -> Runs:
    """The five runs, in order; `first` gets the FirstRun copy once the first has run."""
    runs = Runs(root, root / "spans", root / "serving", root / "metadata.sqlite", [], [])
    paths = [
        "--spans-dir",
        str(runs.spans),
        "--pipeline-root",
        str(root / "pipeline"),
        "--metadata",
        str(runs.metadata),
        "--serving-dir",
        str(runs.serving),
        "--logs-dir",
        str(root / "logs"),
    ]
    ingest = ["-m", "ingest", "--spans-dir", str(runs.spans), "--span", "next"]

    def run(*extra: str, check: bool = True) -> None:
        runs.outputs.append(
            run_module(
                "local_runner.py",
                *paths,
                *TRAIN_ARGS,
                *FLOORS,
                *extra,
                check=check,
                timeout=RUN_TIMEOUT,
            )
        )
        runs.trees.append(tree_digest(runs.serving))

    try:
        run_module(*ingest, "--data-dir", str(data_slice))
        run()
        copy = root.parent / f"{root.name}-first-run"
        shutil.copytree(runs.spans, copy / "spans")
        shutil.copy2(runs.metadata, copy / "metadata.sqlite")
        shutil.copytree(runs.serving, copy / "serving")
        first.set_result(FirstRun(copy / "spans", copy / "metadata.sqlite", copy / "serving"))
    except BaseException as err:
        first.set_exception(err)
        raise
    run()
    run_module(*ingest, "--data-dir", str(data_slice), "--file", "more.tsv")
    run()
    spans.write_span(runs.spans, 2, bad_span_records(), {"source": "broken by the test"})
    run(check=False)
    run("--train-spans", "0-1", *TUNE_ARGS, "--encoder")  # ENCODER_RUN
    return runs


class Background:
    """The runs, made in a thread of their own from the start of the session, so that the
    rest of the suite uses the other core meanwhile (conftest.py starts it)."""

    def __init__(self, root: Path, data_slice: Path) -> None:
        self.first: concurrent.futures.Future = concurrent.futures.Future()
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pipeline-runs")
        self.all = pool.submit(make_runs, root, data_slice, self.first)
        pool.shutdown(wait=False)

    def runs(self) -> Runs:
        return self.all.result(timeout=6 * RUN_TIMEOUT)

    def first_run(self) -> FirstRun:
        return self.first.result(timeout=2 * RUN_TIMEOUT)


BACKGROUND_FIXTURES = {"pipeline_runs", "first_pipeline_run"}


@pytest.fixture(scope="session")
def pipeline_background(tmp_path_factory, data_slice) -> Background:
    return Background(tmp_path_factory.mktemp("e2e"), data_slice)


@pytest.fixture(scope="session")
def pipeline_runs(pipeline_background: Background) -> Runs:
    return pipeline_background.runs()


@pytest.fixture(scope="session")
def first_pipeline_run(pipeline_background: Background) -> FirstRun:
    return pipeline_background.first_run()
