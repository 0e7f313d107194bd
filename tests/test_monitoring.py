"""The drift monitor on real request logs: TFDV statistics of each window, TFDV's skew and
drift comparators against the training spans and the previous window, the domain check,
the record the app and the rollout controller read, and ML Metadata."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from bench.drift import noisy, write_log
from contract import features
from ingest import seed_tsv, spans
from monitoring import compare, job, metadata
from monitoring.__main__ import THRESHOLDS
from serving.app.metrics import AppMetrics
from serving.rollout import checks
from tests.commands import DATA_DIR

WINDOW = 500
WINDOW_S = 600


@pytest.fixture(scope="module")
def monitored(tmp_path_factory, tagger_model):
    """Spans of 2,000 titles, the small test tagger served from a base path, and 1,000
    other titles to replay as normal traffic. The test tagger learnt its first 600 titles
    by heart, so the spans hold titles it never saw: its scores on them are then like its
    scores on traffic, as the served model's are on its spans (the committed thresholds
    were calibrated on those)."""
    root = tmp_path_factory.mktemp("monitored")
    with open(DATA_DIR / "train.tsv", "rb") as f:
        rows = list(seed_tsv.read_rows(f, seed_tsv.ParseReport()))[1000:4000]
    spans.write_span(root / "spans", 0, [spans.to_example_bytes(r) for r in rows[:2000]], {})
    base = root / "serving"
    shutil.copytree(tagger_model, base / "1")
    return root, base, [r.title for r in rows[2000:]]


def test_normal_traffic_stays_quiet_and_a_garbled_stream_alarms_on_its_second_window(monitored):
    root, base, held_out = monitored
    rng = random.Random(0)
    stream = held_out[: 2 * WINDOW] + [noisy(t, rng) for t in held_out[: 2 * WINDOW]]
    logs, out = root / "logs", root / "out"
    write_log(logs, str(base / "1"), stream, WINDOW)
    thresholds = dataclasses.replace(compare.Thresholds.load(THRESHOLDS), window_requests=WINDOW)
    recorded = []
    results = job.run(
        str(logs),
        str(base),
        str(root / "spans"),
        str(out),
        thresholds,
        WINDOW_S,
        now=4e9,
        record=recorded.append,
    )
    assert [r["requests"] for r in results] == [WINDOW] * 4
    assert [r["alarm"] for r in results] == [False, False, False, True], [
        r["above"] for r in results
    ]
    normal, shifted = results[:2], results[2:]
    assert all(r["windows_above"] == 0 for r in normal)
    # Every comparator reported a distance, below its threshold or not.
    assert set(results[1]["skew"]) == set(results[1]["drift"]) == set(compare.COMPARED)
    assert results[0]["drift"] == {}  # nothing before the first window
    assert all(r["domain_auc"] < 0.6 for r in normal), [r["domain_auc"] for r in normal]
    assert all("domain_auc" in r["above"] and "skew:oov_share" in r["above"] for r in shifted)
    assert json.loads((out / "latest.json").read_text()) == results[-1] == recorded[-1]
    # Run again: nothing new to judge, and the judged windows stay as they were.
    assert (
        job.run(str(logs), str(base), str(root / "spans"), str(out), thresholds, WINDOW_S, now=4e9)
        == []
    )

    # What the app exports and the rollout controller reads.
    page = AppMetrics("/nonexistent", str(out / "latest.json"))
    text = page.render(None, None, {}, {}, monitor=page.monitor_record())
    assert "stackoverflow_tagger_drift_windows_above 2" in text
    assert 'stackoverflow_tagger_drift_distance{kind="skew",feature="oov_share"}' in text
    assert checks.skew(page.monitor_record()).status == checks.FAIL
    assert checks.skew(normal[-1]).status == checks.PASS


def test_each_window_is_an_execution_in_ml_metadata(tmp_path):
    path = str(tmp_path / "metadata.sqlite")
    record = metadata.writer(path)
    result = {
        "window_start": 600,
        "window_end": 1200,
        "requests": 500,
        "model_version": "3",
        "above": ["domain_auc"],
        "alarm": False,
        "domain_auc": 0.7,
        "skew": {"oov_share": 0.1},
        "drift": {},
    }
    record(result)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    (execution,) = metadata_store.MetadataStore(config).get_executions_by_type(
        metadata.EXECUTION_TYPE
    )
    props = execution.custom_properties
    assert props["window_end"].int_value == 1200 and props["model_version"].string_value == "3"
    assert json.loads(props["above"].string_value) == ["domain_auc"]
    assert props["alarm"].int_value == 0 and props["domain_auc"].double_value == 0.7


def test_the_features_of_a_title_by_hand():
    import numpy as np

    from monitoring.features import describe

    frame = describe(
        ["How to call foo.bar() in Python", "sort"],
        np.array([[0.9, 0.1], [0.2, 0.6]]),
        np.array([[True, True], [False, True]]),
        ["python", "java"],
        frozenset({"call", "python"}),
    )
    assert frame["title_words"].tolist() == [6, 1]
    assert frame["title_chars"].tolist() == [31, 4]
    # Model tokens of the first: call, foobar, python ("how", "to", "in" are stop words).
    assert frame["oov_share"].tolist() == pytest.approx([1 / 3, 1.0])
    assert frame["code_share"].tolist() == pytest.approx([1 / 6, 0.0])  # foo.bar()
    assert frame["top_tag"].tolist() == ["python", "java"]
    assert frame["predicted_tags"].tolist() == [2, 1]
    assert frame["top_score"].tolist() == pytest.approx([0.9, 0.6])
    assert features.SERVING_INPUT == "title"


class FakePipelineJob:
    """aiplatform.PipelineJob at the client boundary: what it was made with and asked."""

    made: list[FakePipelineJob] = []

    def __init__(self, **kwargs) -> None:
        self.kwargs, self.calls = kwargs, []
        FakePipelineJob.made.append(self)

    def create_schedule(self, **kwargs):
        self.calls.append(("create_schedule", kwargs))
        return type("Schedule", (), {"resource_name": "projects/1/schedules/9"})()


def test_the_monitor_compiles_for_vertex_and_is_scheduled_there(tmp_path, monkeypatch, capsys):
    from google.cloud import aiplatform

    from monitoring import vertex

    monkeypatch.setattr(aiplatform, "PipelineJob", FakePipelineJob)
    monkeypatch.setattr(aiplatform, "init", lambda **kw: None)
    FakePipelineJob.made = []
    out = tmp_path / "monitor.json"
    buckets = [
        "--logs=gs://m/requests",
        "--out=gs://m/monitoring",
        "--spans=gs://p/spans",
        "--model-base-path=gs://m/serving/tagger",
    ]
    cloud = [
        "--project=proj",
        "--region=europe-west4",
        "--pipeline-root=gs://p/root",
        "--service-account=pipeline@proj.iam.gserviceaccount.com",
    ]
    assert (
        vertex.main(
            [
                "--image=registry/pipeline@sha256:abc",
                *buckets,
                f"--output={out}",
                "--schedule=*/10 * * * *",
                *cloud,
            ]
        )
        == 0
    )
    spec = json.loads(out.read_text())
    (executor,) = spec["deploymentSpec"]["executors"].values()
    container = executor["container"]
    assert container["image"] == "registry/pipeline@sha256:abc"
    assert container["command"] == ["python", "-m", "monitoring"]
    assert container["args"] == [
        *buckets[:1],
        "--window-seconds=600",
        *buckets[1:2],
        buckets[3],
        buckets[2],
        "--metadata=",
    ]
    (task,) = spec["root"]["dag"]["tasks"].values()
    assert task["cachingOptions"].get("enableCache", False) is False
    (job,) = FakePipelineJob.made
    assert job.kwargs["enable_caching"] is False and job.kwargs["template_path"] == str(out)
    assert job.calls == [
        (
            "create_schedule",
            {
                "cron": "*/10 * * * *",
                "display_name": "so-tagger-drift-monitor-schedule",
                "service_account": "pipeline@proj.iam.gserviceaccount.com",
            },
        )
    ]
    assert "schedule projects/1/schedules/9: */10 * * * *" in capsys.readouterr().out
