"""The real pipeline end to end on a slice of the data, through the commands a user runs.

The five runs (first, cached, good new span, broken span, chosen span range) are made
once per session by the `pipeline_runs` fixture (tests/pipeline_runs.py). What they did
is read from ML Metadata directly (tests/mlmd.py) and from the serving directory.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf

from ingest import spans
from modules import features
from tests.commands import run_module
from tests.mlmd import COMPLETE, INPUT, OUTPUT, Store, prop, spans_read
from tests.pipeline_runs import Runs, tree_digest

NODES = (
    "SpanExampleGen", "StatisticsGen", "SchemaGen", "ImportSchemaGen", "ExampleValidator",
    "AnomaliesGate", "Transform", "Trainer", "latest_blessed_model_resolver", "Evaluator",
    "AtomicPusher",
)  # fmt: skip
DATA_PATH = ("SpanExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer")


@pytest.fixture
def runs(pipeline_runs: Runs) -> Runs:
    return pipeline_runs


@pytest.fixture
def store(pipeline_runs: Runs) -> Store:
    return Store(pipeline_runs.metadata)


def versions(runs: Runs) -> list[str]:
    return sorted(p.name for p in (runs.serving / "tagger").iterdir())


def manifest_hashes(runs: Runs, numbers) -> list[str]:
    return [spans.read_manifest(runs.spans, n)["sha256"] for n in numbers]


def transform_read(store: Store, run: int) -> list[dict]:
    (examples,) = store.artifacts(store.execution(run, "Transform"), INPUT, "examples")
    return spans_read(examples)


def test_first_run_executes_every_component(store):
    assert len(store.runs()) == 5
    assert store.states(0) == {node: "ran" for node in NODES}


def test_first_run_pushes_a_numeric_version_recorded_in_metadata(runs, store):
    (pushed,) = store.artifacts(store.execution(0, "AtomicPusher"), OUTPUT, "pushed_model")
    assert prop(pushed, "pushed") == 1
    version = prop(pushed, "pushed_version")
    assert version.isdigit()
    assert prop(pushed, "pushed_destination") == str(runs.serving / "tagger" / version)
    assert set(runs.trees[0]) >= {f"tagger/{version}/saved_model.pb"}
    # Nothing half-written is left beside it.
    assert {name.split("/")[1] for name in runs.trees[0]} == {version}


def test_transform_read_span_0_with_its_manifest_hash(runs, store):
    (read,) = transform_read(store, 0)
    assert read["span"] == 0
    assert read["sha256"] == manifest_hashes(runs, [0])[0]
    assert read["examples"] == 600


def test_pushed_model_serves_raw_titles_with_named_scores_and_threshold(runs):
    (version,) = {name.split("/")[1] for name in runs.trees[0]}
    loaded = tf.saved_model.load(str(runs.serving / "tagger" / version))
    serve = loaded.signatures["serving_default"]
    out = serve(title=tf.constant(["How to merge two dicts in python", "SELECT with JOIN"]))
    scores = out[features.OUTPUT_SCORES].numpy()
    tags = out[features.OUTPUT_TAGS].numpy()
    threshold = out[features.OUTPUT_THRESHOLD].numpy()
    assert scores.shape == (2, features.NUM_TAGS) and scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 1))
    assert tags.shape == (2, features.NUM_TAGS)
    assert b"python" in set(tags[0]) and list(tags[0]) == list(tags[1])
    assert threshold.shape == (2,) and 0 < threshold[0] < 1 and threshold[0] == threshold[1]
    assert scores[0].tolist() != scores[1].tolist()  # the title matters
    assert set(serve.structured_input_signature[1]) == {features.SERVING_INPUT}


def test_second_run_without_new_data_is_cached_and_pushes_nothing(runs, store):
    second = store.states(1)
    assert {node: second[node] for node in DATA_PATH} == dict.fromkeys(DATA_PATH, "cached")
    # The Evaluator reruns once: the first run's model is now the baseline. It re-blesses
    # the same model, and the Pusher recognises it as the version already served.
    assert second["Evaluator"] == "ran"
    (pushed,) = store.artifacts(store.execution(1, "AtomicPusher"), OUTPUT, "pushed_model")
    assert prop(pushed, "pushed") == 0
    assert runs.trees[1] == runs.trees[0]  # names and bytes: no new version, nothing changed
    trainer_runs = [e for e in store.executions_of("Trainer") if e.last_known_state == COMPLETE]
    assert len(trainer_runs) == 3  # runs 1, 3 and 5 trained; 2 was cached, 4 stopped


def test_a_new_good_span_is_validated_and_training_reads_both_spans(runs, store):
    third = store.states(2)
    assert {node: third[node] for node in DATA_PATH} == dict.fromkeys(DATA_PATH, "ran")
    read = transform_read(store, 2)
    assert [s["span"] for s in read] == [0, 1]
    assert [s["sha256"] for s in read] == manifest_hashes(runs, [0, 1])
    (validated,) = store.artifacts(store.execution(2, "StatisticsGen"), INPUT, "examples")
    (trained,) = store.artifacts(store.execution(2, "Transform"), INPUT, "examples")
    assert validated.id == trained.id  # what was validated is what was trained on


def test_bad_span_stops_the_run_before_transform_and_keeps_the_served_model(runs, store):
    assert runs.outputs[3].returncode != 0
    fourth = store.states(3)
    assert fourth["AnomaliesGate"] == "failed"
    assert not {"Transform", "Trainer", "Evaluator", "AtomicPusher"} & set(fourth)
    assert runs.trees[3] == runs.trees[2]
    assert "feature 'title'" in runs.outputs[3].stderr  # the gate says what broke


def test_a_chosen_span_range_trains_without_the_bad_span(runs, store):
    assert runs.outputs[4].returncode == 0, runs.outputs[4].stderr
    fifth = store.states(4)
    assert fifth["SpanExampleGen"] == fifth["Transform"] == "ran"
    assert [s["span"] for s in transform_read(store, 4)] == [0, 1]


LINE = re.compile(r"^  (\S+)\s+(ran|cached|failed|FAILED|running|canceled)\s+[\d.]+ s$")


def test_the_runner_prints_a_line_per_component_and_what_was_pushed(runs):
    first = runs.outputs[0].stdout.splitlines()
    assert first[0].startswith("pipeline so-tagger: full log in ")
    assert sorted(m[1] for m in map(LINE.match, first) if m) == sorted(NODES)
    assert re.match(r"^pushed version \d+ to \S+ \(\d+ s\)$", first[-1])
    assert len(first) == len(NODES) + 2  # TensorFlow's chatter went to the log file
    assert (
        "nothing pushed: the blessed model is the one already serving"
        in (runs.outputs[1].stdout.splitlines()[-1])
    )
    failed = runs.outputs[3]
    assert "nothing pushed: the run failed in AnomaliesGate" in failed.stdout
    assert "DataAnomaliesError: data anomalies, the run stops here:" in failed.stderr
    assert "Traceback" not in failed.stderr and len(failed.stderr.splitlines()) < 20
    log = re.search(r"full log in (\S+)", runs.outputs[3].stdout)[1]
    assert "DataAnomaliesError" in open(log).read()


def test_lineage_command_prints_spans_and_metrics(runs):
    out = run_module("-m", "pipeline.lineage", "--metadata", str(runs.metadata)).stdout
    assert '"micro_f1_score"' in out and '"sha256"' in out


def test_withdrawn_spans_leave_the_runs_and_keep_their_number(runs, tmp_path):
    work = tmp_path / "spans"
    for n in (0, 1, 2):
        spans.write_span(work, n, [b"x"], {})
    run_module("-m", "ingest.withdraw", "--spans-dir", str(work), "--span", "1", "--reason", "t")
    from pipeline.span_example_gen import select_spans

    assert [s["span"] for s in select_spans(str(work), 0, 99)] == [0, 2]
    assert spans.next_span(work) == 3
    with pytest.raises(spans.SpanConflictError, match="withdrawn"):
        spans.write_span(work, 1, [b"y"], {})
    assert tree_digest(work / "withdrawn")  # kept, with its record, for whoever asks later
