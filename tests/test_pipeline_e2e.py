"""The real pipeline end to end on a slice of the data, through the commands a user runs.

The four runs (first, cached, good new span, broken span) are made once per session by
the `pipeline_runs` fixture (tests/pipeline_runs.py); these tests read what they left.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf

from ingest import spans
from modules import features
from tests.commands import run_module
from tests.pipeline_runs import Runs, tree_digest


@pytest.fixture
def runs(pipeline_runs: Runs) -> Runs:
    return pipeline_runs


NODES = (
    "SpanExampleGen", "StatisticsGen", "SchemaGen", "ImportSchemaGen", "ExampleValidator",
    "AnomaliesGate", "training_spans_resolver", "Transform", "Trainer",
    "latest_blessed_model_resolver", "Evaluator", "AtomicPusher",
)  # fmt: skip


REPORT_LINE = re.compile(r"^  (\S+)\s+(ran|cached|FAILED|running|canceled)\s+[\d.]+ s$")


def states(output: str) -> dict[str, str]:
    """Component -> state, from the run report local_runner prints."""
    return {m[1]: m[2] for m in map(REPORT_LINE.match, output.splitlines()) if m}


def test_first_run_executes_every_component(runs):
    assert states(runs.first) == {node: "ran" for node in NODES}


def test_blessed_model_is_pushed_into_a_numeric_version(runs):
    assert len(runs.versions_after_first) == 1
    (version,) = runs.versions_after_first
    assert version.isdigit()
    assert (runs.serving / "tagger" / version / "saved_model.pb").exists()
    # Nothing half-written is left beside it.
    assert runs.entries_after_first == [version]


def test_pushed_model_serves_raw_titles_with_named_scores_and_threshold(runs):
    (version,) = runs.versions_after_first
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


def test_metadata_links_the_pushed_model_to_span_0(runs):
    found = runs.lineage_after_first
    (span,) = found["data_spans"]
    assert span["span"] == 0
    assert span["sha256"] == spans.read_manifest(runs.root / "spans", 0)["sha256"]
    assert found["pushed_model"]["version"] == runs.versions_after_first[0]
    assert found["evaluation"]["blessed"] is True
    assert found["schema"]["producer"] == "ImportSchemaGen"


def test_lineage_command_prints_metrics(runs):
    out = run_module("-m", "pipeline.lineage", "--metadata", str(runs.metadata)).stdout
    assert '"micro_f1_score"' in out and '"sha256"' in out


def test_second_run_without_new_data_is_cached_and_pushes_nothing(runs):
    second = states(runs.second)
    for node in ("SpanExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer"):
        assert second[node] == "cached", node
    # The Evaluator reruns once: the first run's model is now the baseline. It re-blesses
    # the same model, and the Pusher recognises it as the version already served.
    # The tree digest covers the version names too: no new version, no file changed.
    assert runs.tree_after_second == runs.tree_after_first


def test_a_new_good_span_is_validated_and_training_reads_both_spans(runs):
    third = states(runs.third)
    for node in ("SpanExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer"):
        assert third[node] == "ran", node
    trained_on = runs.lineage_after_third["data_spans"]
    assert [s["span"] for s in trained_on] == [0, 1]
    assert [s["sha256"] for s in trained_on] == [
        spans.read_manifest(runs.root / "spans", n)["sha256"] for n in (0, 1)
    ]


def test_bad_span_stops_the_run_before_push_and_keeps_the_served_model(runs):
    assert runs.fourth_returncode != 0
    assert "feature 'title'" in runs.fourth_output
    fourth = states(runs.fourth_output)
    assert fourth["AnomaliesGate"] == "FAILED"
    assert not {"training_spans_resolver", "Transform", "Trainer", "AtomicPusher"} & set(fourth)
    assert tree_digest(runs.serving) == runs.tree_after_third
