"""Small pieces of the pipeline that need no pipeline run."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow_model_analysis.proto.config_pb2 import SlicingSpec

from modules import threshold
from pipeline.atomic_pusher import publish
from pipeline.eval_config import make_eval_config


def test_publish_renames_a_complete_copy_into_a_growing_numeric_version(tmp_path):
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"graph")
    (model / "variables" / "variables.index").write_bytes(b"index")
    base = tmp_path / "serving" / "tagger"
    (base / "99999999999").mkdir(parents=True)  # a version from the future
    path, version = publish(str(model), str(base))
    assert version == "100000000000"  # bumped past the existing one
    assert (base / version / "saved_model.pb").read_bytes() == b"graph"
    assert (base / version / "variables" / "variables.index").read_bytes() == b"index"
    assert sorted(p.name for p in base.iterdir()) == ["100000000000", "99999999999"]


def test_threshold_maximises_micro_f1_of_the_at_least_one_tag_rule():
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 1]])
    scores = np.array([[0.9, 0.3], [0.2, 0.35], [0.6, 0.4], [0.1, 0.25]])
    chosen, f1 = threshold.choose(labels, scores)
    # The lowest threshold that keeps 0.3 out; the last row's 0.25 is its top tag.
    assert chosen == 0.31 and f1 == 1.0
    assert threshold.micro_f1(labels, scores >= 0.5) == pytest.approx(2 * 2 / (2 + 5))


def test_the_rule_adds_each_rows_top_tag_and_never_an_unnamed_column():
    scores = np.array([[0.1, 0.2, 0.9], [0.7, 0.6, 0.1], [0.1, 0.3, 0.2]])
    named = [True, True, False]
    assert threshold.decide(scores, 0.5, named).numpy().tolist() == [
        [False, True, False],  # the 0.9 is padding: the best named tag stands in
        [True, True, False],
        [False, True, False],
    ]


def test_eval_config_gates_only_known_metrics():
    config = make_eval_config({"f1_score": 0.5, "exact_match": 0.3}, tolerance=0.01)
    gates = {
        m.class_name: list(m.per_slice_thresholds)
        for spec in config.metrics_specs
        for m in spec.metrics
        if m.per_slice_thresholds or m.HasField("threshold")
    }
    floors = {
        name: [g.threshold.value_threshold.lower_bound.value for g in found]
        for name, found in gates.items()
    }
    assert floors == {"MicroF1Score": [0.5], "SubsetAccuracy": [0.3]}
    # Only the overall slice is gated; the length and tag-count slices are reported.
    assert all(list(g.slicing_specs) == [SlicingSpec()] for found in gates.values() for g in found)
    assert len(config.slicing_specs) == 3
    with pytest.raises(ValueError, match="no blessing floor"):
        make_eval_config({"accuracy": 0.5}, tolerance=0.01)


def test_the_model_already_serving_is_recognised(tmp_path):
    from pipeline.atomic_pusher import serving_version_of

    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"graph")
    base = tmp_path / "serving"
    assert serving_version_of(str(model), str(base)) is None
    _, version = publish(str(model), str(base))
    assert serving_version_of(str(model), str(base)) == version
    (model / "saved_model.pb").write_bytes(b"retrained")
    assert serving_version_of(str(model), str(base)) is None


def test_spans_that_disagree_on_a_feature_type_are_refused_by_name(tmp_path):
    import tensorflow as tf

    from ingest import spans
    from pipeline.span_example_gen import SpanDataError, check_feature_types, select_spans

    def example(title) -> bytes:
        kind = "int64_list" if isinstance(title, int) else "bytes_list"
        value = tf.train.Int64List if kind == "int64_list" else tf.train.BytesList
        feature = {"title": tf.train.Feature(**{kind: value(value=[title])})}
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    spans.write_span(tmp_path, 0, [example(b"a title")] * 3, {})
    spans.write_span(tmp_path, 1, [example(b"another")], {})
    check_feature_types(select_spans(str(tmp_path), 0, 1))  # one type: fine
    spans.write_span(tmp_path, 2, [example(7)], {})
    with pytest.raises(SpanDataError) as caught:
        check_feature_types(select_spans(str(tmp_path), 0, 2))
    assert "feature 'title' is bytes_list in span 0, 1; int64_list in span 2" in str(caught.value)


def test_a_span_whose_data_does_not_match_its_manifest_is_refused(tmp_path):
    from ingest import spans
    from pipeline.span_example_gen import SpanDataError, select_spans

    spans.write_span(tmp_path, 0, [b"record"], {})
    (spans.span_dir(tmp_path, 0) / spans.DATA_FILE).write_bytes(b"half a copy")
    with pytest.raises(SpanDataError, match="damaged or still being copied"):
        select_spans(str(tmp_path), 0, 0)


def test_edited_module_code_changes_what_transform_and_trainer_are_cached_by(tmp_path):
    import json
    import shutil

    import local_runner
    from modules import PACKAGE_DIR, code_version

    package = tmp_path / "modules"
    shutil.copytree(PACKAGE_DIR, package)
    before = code_version(package)
    assert code_version(package) == before  # stable while nothing changes
    (package / "model.py").write_text((package / "model.py").read_text() + "\n# edited\n")
    assert code_version(package) != before

    # The fingerprint reaches the exec properties TFX and Vertex key their caches on.
    components = {
        c.id: c for c in local_runner.build_pipeline(local_runner.parse_args([])).components
    }
    for node in ("Transform", "Trainer"):
        config = json.loads(components[node].exec_properties["custom_config"])
        assert config["code_version"] == code_version()


def _examples_gen_splits(spans_dir, out_dir) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Run SpanExampleGen's executor as the pipeline configures it; (title, tags) by split."""
    import tensorflow as tf
    from google.protobuf import message
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from pipeline.pipeline import SPLITS
    from pipeline.span_example_gen import Executor, SpanExampleGen

    component = SpanExampleGen(
        spans_dir=str(spans_dir),
        feedback_split=SPLITS[0][0],
        output_config=example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(
                splits=[
                    example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=b) for n, b in SPLITS
                ]
            )
        ),
    )
    properties = {
        k: proto_utils.proto_to_json(v) if isinstance(v, message.Message) else v
        for k, v in component.exec_properties.items()
    }
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    examples.split_names = '["train", "eval", "test"]'
    Executor().Do({}, {"examples": [examples]}, properties)
    found = {}
    for name, _ in SPLITS:
        files = tf.io.gfile.glob(f"{out_dir}/Split-{name}/*")
        rows = []
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            rows.append(
                (
                    feature["title"].bytes_list.value[0].decode(),
                    tuple(t.decode() for t in feature["tags"].bytes_list.value),
                )
            )
        found[name] = sorted(rows)
    return found


def test_feedback_changes_what_is_trained_on_never_what_is_evaluated(tmp_path):
    from ingest import seed_tsv, spans

    base = [seed_tsv.Row(f"how do I do thing {i} in python", ("python",)) for i in range(300)]
    spans.write_span(tmp_path / "spans", 0, map(spans.to_example_bytes, base), {})
    before = _examples_gen_splits(tmp_path / "spans", tmp_path / "before")
    assert before["eval"] and before["test"]  # the slice has something to evaluate on
    # Feedback that contradicts the evaluation set: its very titles, with another tag.
    held_out = [title for title, _ in before["eval"] + before["test"]]
    contradicting = [seed_tsv.Row(title, ("java",)) for title in held_out]
    spans.write_span(
        tmp_path / "spans",
        1,
        map(spans.to_example_bytes, contradicting),
        {spans.SOURCE: spans.FEEDBACK_SOURCE, spans.FEEDBACK_BATCH: 1},
    )
    after = _examples_gen_splits(tmp_path / "spans", tmp_path / "after")
    assert after["eval"] == before["eval"] and after["test"] == before["test"]
    assert sorted(after["train"]) == sorted(before["train"] + [(t, ("java",)) for t in held_out])


def _micro_value(metric, labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    """The metric's value on these weighted examples, combined in two halves as Beam may."""
    from tensorflow_model_analysis.metrics import metric_types

    micro = metric_types.AggregationType(micro_average=True)
    computation, derived = metric.computations(aggregation_type=micro, example_weighted=True)
    combiner = computation.combiner
    halves = []
    for part in (slice(0, len(labels) // 2), slice(len(labels) // 2, None)):
        accumulator = combiner.create_accumulator()
        for label, score, weight in zip(labels[part], scores[part], weights[part], strict=True):
            element = metric_types.StandardMetricInputs(
                labels=label.astype(np.float32), predictions=score, example_weights=weight
            )
            accumulator = combiner.add_input(accumulator, element)
        halves.append(accumulator)
    (value,) = derived.result(combiner.extract_output(combiner.merge_accumulators(halves))).values()
    return value


def test_the_micro_metrics_count_every_tag_of_every_example():
    from sklearn.metrics import (
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    from modules import metrics

    rng = np.random.default_rng(7)
    labels = rng.random((300, 6)) < 0.3
    # Scores on a 0.01 grid, many tied; a threshold falls between every two grid values.
    scores = np.round(np.clip(labels * 0.3 + rng.random((300, 6)) * 0.7, 0, 1), 2)
    # Weight 2 counts an example twice: the expected values see it duplicated.
    weights = np.where(np.arange(300) % 5 == 0, 2.0, 1.0)
    flat_labels = np.repeat(labels, weights.astype(int), axis=0).ravel()
    flat_scores = np.repeat(scores, weights.astype(int), axis=0).ravel()
    decided = flat_scores > 0.5

    def value(metric):
        return _micro_value(metric, labels, scores, weights)

    assert value(metrics.MicroPrecision()) == pytest.approx(precision_score(flat_labels, decided))
    assert value(metrics.MicroRecall()) == pytest.approx(recall_score(flat_labels, decided))
    assert value(metrics.MicroF1Score()) == pytest.approx(f1_score(flat_labels, decided))
    # Every distinct score lies between two thresholds, so the interpolated ROC curve is
    # the exact one; the precision-recall curve is interpolated, AP is a step sum.
    assert value(metrics.MicroAUC()) == pytest.approx(roc_auc_score(flat_labels, flat_scores))
    assert value(metrics.MicroAUCPrecisionRecall()) == pytest.approx(
        average_precision_score(flat_labels, flat_scores), abs=0.01
    )
    with pytest.raises(ValueError, match="micro_average"):
        metrics.MicroF1Score().computations()
