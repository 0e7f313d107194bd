"""The request log: TF Serving's PredictionLog records in TFRecord files, written by the
app (no TensorFlow) and by the model server's logging_config, read back here with
TensorFlow's TFRecord reader, TF Serving's own proto classes, and TFDV."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_serving.apis import prediction_log_pb2

from serving.request_log import DESCRIPTORS, export_protos, records, tfrecord
from serving.request_log.writer import RequestLog
from serving.rollout import models_config
from store import objects
from tests import fake_gcs
from tests.app_stack import served_model  # noqa: F401 - the fixture
from tests.model_server_process import app_server, model_server, wait_for

ROW = {
    "scores": [0.9, 0.2],
    "tags": ["python", "java"],
    "threshold": 0.5,
    "predicted": [True, False],
}


def read_logs(directory: Path) -> list[prediction_log_pb2.PredictionLog]:
    """Every record of every finished log file, through TensorFlow's reader."""
    files = sorted(str(p) for p in directory.glob("*.tfrecord"))
    return (
        [
            prediction_log_pb2.PredictionLog.FromString(raw.numpy())
            for raw in tf.data.TFRecordDataset(files)
        ]
        if files
        else []
    )


def test_the_committed_descriptors_are_those_of_the_pinned_tensorflow_serving_api():
    assert DESCRIPTORS.read_bytes() == export_protos.descriptor_set(), (
        "run `python -m serving.request_log.export_protos` and commit the file"
    )


def test_records_read_back_with_tf_servings_classes_and_rotate_by_size(tmp_path):
    log = RequestLog(str(tmp_path), rate=1.0, max_bytes=2000, max_seconds=3600)
    titles = [f"how do I sort list number {i}" for i in range(40)]
    for i, title in enumerate(titles):
        log.put(
            records.prediction_log(
                "tagger", "3", "canary" if i % 2 else "stable", title, ROW, 1.0, 1.7e9 + i
            )
        )
    log.close()
    files = sorted(tmp_path.glob("*.tfrecord"))
    assert len(files) > 3 and all(f.stat().st_size < 2000 + 400 for f in files)
    assert not list(tmp_path.glob(".*")), "no staging file is left behind"
    logged = read_logs(tmp_path)
    assert [r.predict_log.request.inputs["title"].string_val[0].decode() for r in logged] == titles
    first = logged[1]
    assert first.log_metadata.model_spec.name == "tagger"
    assert first.log_metadata.model_spec.version.value == 3
    assert first.log_metadata.sampling_config.sampling_rate == 1.0
    assert first.log_metadata.timestamp_secs == 1_700_000_001
    assert first.predict_log.request.model_spec.version_label == "canary"
    outputs = first.predict_log.response.outputs
    assert tf.make_ndarray(outputs["scores"])[0].tolist() == pytest.approx([0.9, 0.2])
    assert tf.make_ndarray(outputs["tags"]).tolist() == [[b"python", b"java"]]
    assert tf.make_ndarray(outputs["predicted"]).tolist() == [[True, False]]
    assert log.counts == {"written": 40, "dropped": 0}


def test_a_file_is_closed_when_its_time_is_up_and_a_damaged_one_is_named(tmp_path):
    log = RequestLog(str(tmp_path), rate=1.0, max_bytes=1 << 20, max_seconds=0.3)
    log.put(records.prediction_log("tagger", "1", "stable", "one", ROW, 1.0, time.time()))
    (done,) = wait_for(lambda: list(tmp_path.glob("*.tfrecord")), timeout=10)
    log.put(records.prediction_log("tagger", "1", "stable", "two", ROW, 1.0, time.time()))
    log.close()
    assert len(read_logs(tmp_path)) == 2
    data = done.read_bytes()
    with pytest.raises(tfrecord.CorruptRecordError, match="bad record"):
        list(tfrecord.records(data[:-3]))


def test_the_sampling_rate_is_the_share_of_requests_logged(tmp_path):
    draws = iter([i / 1000 for i in range(1000)])
    log = RequestLog(str(tmp_path), rate=0.1, draw=lambda: next(draws))
    assert sum(log.sampled() for _ in range(1000)) == 100
    log.close()
    with pytest.raises(ValueError, match="share"):
        RequestLog(str(tmp_path), rate=1.5)


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path):
    log = RequestLog(str(tmp_path), rate=1.0, queue_size=1)
    log._queue.put(b"x")  # the writer may be mid-record: make the queue full for certain
    for _ in range(50):
        log.put(b"record")
    assert log.counts["dropped"] >= 49 - 1
    log.close()


def test_a_gs_prefix_gets_whole_objects_and_a_failed_upload_is_retried(tmp_path, monkeypatch):
    gcs = fake_gcs.install(monkeypatch)
    failures = iter([True])
    real_write = objects.write

    def flaky_write(path: str, data: bytes) -> None:
        if next(failures, False):
            raise OSError("503 from storage")
        real_write(path, data)

    monkeypatch.setattr(objects, "write", flaky_write)
    monkeypatch.setattr("serving.request_log.writer.RETRY_S", 0.05)
    log = RequestLog("gs://logs/tagger", rate=1.0, max_seconds=0.05)
    for i in range(5):
        log.put(records.prediction_log("tagger", "2", "stable", f"t{i}", ROW, 1.0, 1.7e9))
    wait_for(lambda: gcs.objects, timeout=10)
    log.close()
    names = sorted(gcs.objects)
    assert all(n.startswith("logs/tagger/prediction_log-") for n in names)
    titles = [
        prediction_log_pb2.PredictionLog.FromString(r)
        .predict_log.request.inputs["title"]
        .string_val[0]
        for n in names
        for r in tfrecord.records(gcs.objects[n])
    ]
    assert titles == [f"t{i}".encode() for i in range(5)] and log.counts["written"] == 5


def test_the_app_logs_a_share_of_predictions_that_tfdv_describes(tmp_path, served_model):  # noqa: F811
    models, base = served_model
    logs = tmp_path / "requests"
    titles = [f"how to parse json in python {i}" for i in range(30)]
    with app_server(
        f"--model-url=http://127.0.0.1:{models.port}",
        f"--feedback={tmp_path / 'feedback.db'}",
        f"--model-base-path={base}",
        f"--request-log={logs}",
        "--request-log-rate=1",
        "--request-log-max-seconds=0.2",
        log_dir=tmp_path,
    ) as app:
        answers = [app.post("/api/predict", {"title": t}).json() for t in titles]
        logged = wait_for(lambda: len(read_logs(logs)) == 30 and read_logs(logs), timeout=20)
        page = app.metrics().body.decode()
    assert 'stackoverflow_tagger_request_log_records_total{outcome="written"} 30' in page
    for record, answer, title in zip(logged, answers, titles, strict=True):
        assert record.predict_log.request.inputs["title"].string_val == [title.encode()]
        assert record.log_metadata.model_spec.version.value == int(answer["model_version"])
        assert record.predict_log.request.model_spec.version_label == "stable"
        outputs = record.predict_log.response.outputs
        chosen = {
            t.decode()
            for t, p in zip(
                tf.make_ndarray(outputs["tags"])[0],
                tf.make_ndarray(outputs["predicted"])[0],
                strict=True,
            )
            if p
        }
        assert chosen == {t["tag"] for t in answer["tags"]}
    frame = pd.DataFrame(
        {
            "title": [r.predict_log.request.inputs["title"].string_val[0].decode() for r in logged],
            "top_score": [
                float(max(r.predict_log.response.outputs["scores"].float_val)) for r in logged
            ],
        }
    )
    stats = tfdv.generate_statistics_from_dataframe(frame)
    described = {f.path.step[0]: f for f in stats.datasets[0].features}
    assert stats.datasets[0].num_examples == 30
    assert described["title"].string_stats.unique == 30
    assert 0 < described["top_score"].num_stats.min <= described["top_score"].num_stats.max <= 1


def test_the_model_server_honours_logging_config_as_tf_serving_does(tmp_path, served_model):  # noqa: F811
    _, base = served_model
    prefix = tmp_path / "server-logs" / "so_tagger"
    prefix.parent.mkdir()
    config = tmp_path / "models.config"
    config.write_text(
        models_config.render("tagger", str(base), {"7"}, {"stable": "7"}).replace(
            '    model_platform: "tensorflow"\n',
            '    model_platform: "tensorflow"\n    logging_config { log_collector_config { '
            f'type: "" filename_prefix: "{prefix}" }} '
            "sampling_config { sampling_rate: 1.0 } }\n",
        )
    )
    with model_server(
        f"--model_config_file={config}", "--request_log_max_seconds=0.2", log_dir=tmp_path
    ) as server:
        reply = server.post(
            "/v1/models/tagger/labels/stable:predict",
            {"instances": ["read a csv file with pandas"]},
        )
        assert reply.status == 200
        (logged,) = wait_for(lambda: read_logs(prefix.parent), timeout=20)
    assert logged.log_metadata.model_spec.version.value == 7
    assert logged.predict_log.request.model_spec.version_label == "stable"
    assert tf.make_ndarray(logged.predict_log.request.inputs["title"]).tolist() == [
        b"read a csv file with pandas"
    ]
    scores = tf.make_ndarray(logged.predict_log.response.outputs["scores"])
    assert scores.shape == (1, 100) and scores[0].tolist() == pytest.approx(
        reply.json()["predictions"][0]["scores"], abs=1e-6
    )


def test_production_model_configs_carry_no_logging_config():
    """The stock tensorflow_model_server refuses a logging_config (it has no collector)."""
    generated = models_config.render(
        "tagger", "gs://b/serving/tagger", {"3", "4"}, {"stable": "3", "canary": "4"}
    )
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    parsed = text_format.Parse(generated, model_server_config_pb2.ModelServerConfig())
    (model,) = parsed.model_config_list.config
    assert not model.HasField("logging_config")
    assert list(model.model_version_policy.specific.versions) == [3, 4]
    assert dict(model.version_labels) == {"canary": 4, "stable": 3}
    deploy = Path(__file__).resolve().parent.parent / "deploy"
    for path in deploy.rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".yml", ".config", ".tpl"):
            assert "logging_config" not in path.read_text(), path
