"""The real pipeline end to end on a slice of the data, through the commands a user runs.

The five runs (first, cached, good new span, broken span, chosen span range) are made
once per session by the `pipeline_runs` fixture (tests/pipeline_runs.py). What they did
is read from ML Metadata directly (tests/mlmd.py) and from the serving directory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from contract import features, paths, serving_layout
from ingest import spans
from modules import encoder, model, trainer
from pipeline import adopt_tuning, evaluation, metadata
from tests import graph_ops
from tests.commands import run_module
from tests.mlmd import COMPLETE, INPUT, OUTPUT, Store, prop, spans_read
from tests.pipeline_runs import ENCODER_RUN, TUNE_ARGS, Runs, tree_digest

NODES = (
    "SpanExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "AnomaliesGate",
    "Transform",
    "tuned_hyperparameters",
    "Trainer",
    "latest_blessed_model_resolver",
    "Evaluator",
    "AtomicPusher",
)
DATA_PATH = ("SpanExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer")


@pytest.fixture
def runs(pipeline_runs: Runs) -> Runs:
    return pipeline_runs


@pytest.fixture
def store(pipeline_runs: Runs) -> Store:
    return Store(pipeline_runs.metadata)


def versions(runs: Runs) -> list[str]:
    return sorted(p.name for p in (runs.serving / "tagger").iterdir() if p.name.isdigit())


def pushed_versions(tree: dict[str, str]) -> set[str]:
    return {name.split("/")[1] for name in tree if name.split("/")[1].isdigit()}


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
    # Nothing half-written is left beside it; only its published quality.
    assert {name.split("/")[1] for name in runs.trees[0]} == {version, "quality"}


def test_the_pushed_versions_evaluator_metrics_are_published_beside_it(runs, store):
    (pushed,) = store.artifacts(store.execution(0, "AtomicPusher"), OUTPUT, "pushed_model")
    version = prop(pushed, "pushed_version")
    path = Path(serving_layout.quality_path(str(runs.serving / "tagger"), version))
    published = json.loads(path.read_text())
    (result,) = store.artifacts(store.execution(0, "Evaluator"), OUTPUT, "evaluation")
    assert published["version"] == version
    assert published["metrics"] == evaluation.overall(evaluation.load(result.uri))
    assert published["metrics"]["micro_f1_score"] > 0


def test_transform_read_span_0_with_its_manifest_hash(runs, store):
    (read,) = transform_read(store, 0)
    assert read["span"] == 0
    assert read["sha256"] == manifest_hashes(runs, [0])[0]
    assert read["examples"] == 600


def test_pushed_model_serves_raw_titles_with_named_scores_and_threshold(runs):
    (version,) = pushed_versions(runs.trees[0])
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


def test_predicted_is_the_threshold_with_at_least_one_tag_per_title(runs):
    (version,) = pushed_versions(runs.trees[0])
    serve = tf.saved_model.load(str(runs.serving / "tagger" / version)).signatures[
        "serving_default"
    ]
    # Real titles, and ones no training term matches: those get their top tag only.
    titles = ["How to merge two dicts in python", "SELECT with JOIN", "qqqq zzzz", "", "the a"]
    out = serve(title=tf.constant(titles))
    scores, threshold = (
        out[features.OUTPUT_SCORES].numpy(),
        out[features.OUTPUT_THRESHOLD].numpy()[0],
    )
    predicted = out[features.OUTPUT_PREDICTED].numpy()
    named = out[features.OUTPUT_TAGS].numpy()[0] != b""
    assert predicted.dtype == bool and predicted.shape == scores.shape
    for row, chosen in zip(scores, predicted, strict=True):
        top = np.argmax(np.where(named, row, -1))
        expected = (row >= threshold) & named
        expected[top] = True
        assert chosen.tolist() == expected.tolist()
    assert predicted.sum(axis=1).min() >= 1


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


def test_the_trained_margin_head_is_the_linear_svm(store):
    """modules/linear_svm.py: after fit, the margin head's deep part is zero and its wide
    parts hold the SVM's weights (the unit test checks them against LinearSVC)."""
    assert training_summary(store, 0)["margin_svm_c"] == 0.1  # the default docs/model.md gives
    (trained,) = store.artifacts(store.execution(0, "Trainer"), OUTPUT, "model")
    served = tf.saved_model.load(f"{trained.uri}/Format-Serving")
    weights = {v.name.split(":")[0]: v.numpy() for v in served.variables}
    assert not weights["margin_deep/kernel"].any()
    assert weights["margin_wide/kernel"].any() and weights["margin_wide_chars/kernel"].any()


def training_summary(store: Store, run: int) -> dict:
    (model_run,) = store.artifacts(store.execution(run, "Trainer"), OUTPUT, "model_run")
    return json.loads((Path(model_run.uri) / "training_summary.json").read_text())


def test_untuned_runs_train_with_the_reviewed_hyperparameters_file(store):
    (used,) = store.artifacts(store.execution(0, "Trainer"), INPUT, "hyperparameters")
    assert Path(used.uri) == paths.hyperparameters_dir(False)
    reviewed = json.loads(paths.hyperparameters_file(False).read_text())["values"]
    assert set(reviewed) == set(trainer.HYPERPARAMETERS)
    summary = training_summary(store, 0)
    assert {name: summary[name] for name in reviewed} == reviewed


def test_a_tuning_run_trains_with_the_tuners_best_hyperparameters(store):
    fifth = store.states(4)
    assert fifth["Tuner"] == "ran" and "tuned_hyperparameters" not in fifth
    tuner, training = store.execution(4, "Tuner"), store.execution(4, "Trainer")
    (best,) = store.artifacts(tuner, OUTPUT, "best_hyperparameters")
    (used,) = store.artifacts(training, INPUT, "hyperparameters")
    assert used.id == best.id
    tuned = json.loads((Path(best.uri) / "best_hyperparameters.txt").read_text())["values"]
    assert set(tuned) == set(trainer.HYPERPARAMETERS)
    # Every trial trained and was scored: a search whose trials all fail still "finishes"
    # with a best guess, as it did while TensorBoard was missing from the environment.
    (results,) = store.artifacts(tuner, OUTPUT, "tuner_results")
    trials = json.loads((Path(results.uri) / "tuner_results.json").read_text())
    assert len(trials) == int(TUNE_ARGS[TUNE_ARGS.index("--tune") + 1])
    assert all(np.isfinite(t["score"]) for t in trials)
    assert all(0 <= t["score"] <= 1 for t in trials)  # the objective: eval micro F1
    best_trial = max(trials, key=lambda t: t["score"])
    assert {name: best_trial[name] for name in tuned} == tuned
    summary = training_summary(store, 4)
    assert {name: summary[name] for name in tuned} == tuned
    # The Tuner searched on the same transformed data the Trainer read.
    (searched,) = store.artifacts(tuner, INPUT, "examples")
    (trained,) = store.artifacts(training, INPUT, "examples")
    assert searched.id == trained.id


def transformed_spec(store: Store, run: int) -> dict:
    (graph,) = store.artifacts(store.execution(run, "Transform"), OUTPUT, "transform_graph")
    return tft.TFTransformOutput(graph.uri).transformed_feature_spec()


def test_without_the_encoder_setting_there_is_no_embedding(store):
    assert features.EMBEDDING not in transformed_spec(store, 0)


def test_the_encoder_setting_embeds_titles_in_transform_and_serves_raw_titles(store, tmp_path):
    """--encoder: Transform adds MiniLM's embedding of each title, the network reads it,
    the Evaluator scores the model, and the exported model runs the encoder itself."""
    assert store.states(ENCODER_RUN)["Evaluator"] == "ran"
    spec = transformed_spec(store, ENCODER_RUN)
    assert spec[features.EMBEDDING].shape == [features.EMBEDDING_WIDTH]
    (trained,) = store.artifacts(store.execution(ENCODER_RUN, "Trainer"), OUTPUT, "model")
    encoder.register_ops()
    served = tf.saved_model.load(f"{trained.uri}/Format-Serving")
    weights = {v.name.split(":")[0]: v.numpy() for v in served.variables}
    assert {"embedding_dense/kernel"} | {f"{h}_embedding/kernel" for h in model.HEADS} <= set(
        weights
    )
    # The margin head was solved as a linear SVM reading the embedding too.
    assert weights["margin_embedding/kernel"].any() and not weights["margin_deep/kernel"].any()
    titles = tf.constant(["How to merge two dictionaries in Python", "jquery click not firing"])
    transformed = served.tft_layer({features.TITLE: tf.reshape(titles, [-1, 1])})
    direct = encoder.MiniLM(encoder.model_files(tmp_path))(titles)
    np.testing.assert_allclose(transformed[features.EMBEDDING], direct, atol=1e-5)
    out = served.signatures["serving_default"](title=titles)
    assert out[features.OUTPUT_SCORES].shape == (2, features.NUM_TAGS)
    assert out[features.OUTPUT_PREDICTED].numpy().any(axis=1).all()


def test_the_pushed_default_model_and_the_encoder_model_need_core_tensorflow_ops_only(runs, store):
    """What stock TF Serving can load: every op of the graph registered by TensorFlow
    alone, the encoder setting's WordPiece and transformer included."""
    base = runs.serving / serving_layout.MODEL_NAME
    versions = [p for p in base.iterdir() if serving_layout.version_number(p.name) is not None]
    pushed = max(versions, key=lambda p: int(p.name))
    ops = graph_ops.saved_model_ops(pushed)
    assert {"StringSplitV2", "MatMul", "LookupTableFindV2"} <= ops  # the graph was read
    assert graph_ops.not_in_core_tensorflow(ops) == []
    (trained,) = store.artifacts(store.execution(ENCODER_RUN, "Trainer"), OUTPUT, "model")
    encoder_ops = graph_ops.saved_model_ops(Path(trained.uri) / "Format-Serving")
    assert {"UnicodeDecode", "Substr", "BatchMatMulV2"} <= encoder_ops  # read
    assert graph_ops.not_in_core_tensorflow(encoder_ops) == []
    # The check still catches what stock TF Serving lacks: the former tokenizer's op.
    tf_text_op = "WordpieceTokenizeWithOffsets"
    assert graph_ops.not_in_core_tensorflow(encoder_ops | {tf_text_op}) == [tf_text_op]


def test_tuned_values_are_adopted_only_when_their_model_was_blessed(runs, store, tmp_path):
    out = tmp_path / "best_hyperparameters.txt"
    adopt = ["-m", "pipeline.adopt_tuning", "--metadata", str(runs.metadata), "--output", str(out)]
    (blessing,) = store.artifacts(store.execution(4, "Evaluator"), OUTPUT, "blessing")
    blessed = prop(blessing, "blessed") == 1
    first = run_module(*adopt, check=False)
    assert (first.returncode == 0) == blessed == out.exists(), first.stderr
    if not blessed:
        assert "not adopted: the Evaluator did not bless the model" in first.stderr
    run_module(*adopt, "--force")
    (best,) = store.artifacts(store.execution(4, "Tuner"), OUTPUT, "best_hyperparameters")
    tuned = json.loads((Path(best.uri) / "best_hyperparameters.txt").read_text())
    assert json.loads(out.read_text()) == tuned
    # Without --output they would go to the encoder setting's file: the run tuned with it.
    raw = metadata.sqlite_store(str(runs.metadata))
    assert adopt_tuning.tuned_with_encoder(raw, adopt_tuning.latest_tuned(raw))


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


def test_lineage_command_prints_spans_metrics_and_the_rollout_beside_the_pushed_model(runs):
    out = run_module("-m", "pipeline.lineage", "--metadata", str(runs.metadata)).stdout
    assert '"micro_f1_score"' in out and '"sha256"' in out
    pushed = json.loads(out)["pushed_model"]
    assert pushed["rollout"] == []  # no controller has seen it yet
    # What the rollout controller writes beside the versions (serving/rollout/controller.py).
    base, version = pushed["destination"].rstrip("/").rsplit("/", 1)
    events = [
        {
            "at": 1.7e9,
            "version": version,
            "action": "rolled_back",
            "actor": "controller",
            "reason": "live_f1: canary 0.210 (40), stable 0.640 (40), z -6.10",
            "checks": [],
        }
    ]
    path = Path(serving_layout.rollout_path(base, version))
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(events))
    try:
        out = run_module("-m", "pipeline.lineage", "--metadata", str(runs.metadata)).stdout
    finally:
        path.unlink()
    assert json.loads(out)["pushed_model"]["rollout"] == events


def test_quality_report_prints_headline_weakest_tags_and_slices_and_draws_them(runs, tmp_path):
    png = tmp_path / "report.png"
    out = run_module(
        "-m", "pipeline.quality_report", "--metadata", str(runs.metadata), "--png", str(png)
    ).stdout
    title, head, weakest, by_slice = out.split("\n\n")[:4]
    assert re.match(r"^pushed version \d+: \d+ test titles$", title)
    # The pushed model was compared with the blessed one before it (runs 3 and 5 trained).
    assert re.search(r"^F1 micro\s+0\.\d{4}\s+0\.\d{4}\s+[+-]0\.\d{4}$", head, re.M)
    rows = weakest.splitlines()[2:]
    assert len(rows) == 10
    assert all(re.match(r"^\S+\s+\d+\s+(\d\.\d{3}|-)(\s+\d\.\d{3}){2}$", r) for r in rows)
    f1s = [float(r.split()[-1]) for r in rows]
    assert f1s == sorted(f1s)
    slices = [line.split()[0] for line in by_slice.splitlines()[2:]]
    counts = [int(line.split()[-4]) for line in by_slice.splitlines()[2:]]
    assert all(n > 0 for n in counts) and sum(counts) == 2 * int(title.split()[-3])
    assert {s.split("=")[0] for s in slices} == {features.TITLE_WORDS, features.TRUE_TAGS}
    assert f"{features.TITLE_WORDS}=1-4" in " ".join(slices)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    last = run_module(
        "-m",
        "pipeline.quality_report",
        "--metadata",
        str(runs.metadata),
        "--model",
        "last",
        "--png",
        str(tmp_path / "last.png"),
    ).stdout
    assert last.startswith("the last run's model: ")


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
