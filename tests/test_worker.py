"""The learning worker's span bookkeeping, without a pipeline run: spans rewritten when a
source is withdrawn, and samples the schema cannot take given back, never written."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest

from contract import serving_layout
from ingest import seed_tsv, spans
from learning.retrain import VertexRetrain
from learning.worker import Settings, Worker, span_of_batch
from pipeline import vertex_jobs
from pipeline.vertex_jobs import SUCCEEDED
from store.samples import parse_feedback
from tests import fake_aiplatform, fake_gcs
from tests.stores import KNOWN, Opened, sqlite_url


def sent_by(source: str, title: str, tags=("python",)):
    return dataclasses.replace(
        parse_feedback({"title": title, "actual": list(tags)}), source=source
    )


def worker_on(tmp_path, known=KNOWN) -> tuple[Worker, Opened]:
    store = Opened.at(sqlite_url(tmp_path / "f.db"), known)
    settings = Settings(
        every=1, share=1.0, spans_dir=tmp_path / "spans", metadata=tmp_path / "m.sqlite"
    )
    return Worker(store.db, known, settings), store


def test_a_withdrawn_source_is_taken_out_of_spans_already_written(tmp_path):
    worker, store = worker_on(tmp_path)
    good = [store.add(sent_by("good", f"a fine question {i}")).id for i in range(3)]
    bad = [store.add(sent_by("bad", f"spam {i}")).id for i in range(2)]
    batch, _ = store.retrain.claim(batch_size=5)
    first = worker.write_span(batch)
    store.retrain.record_span(batch, first["span"], first["sha256"])
    assert sorted(first[spans.SAMPLE_IDS]) == sorted(good + bad)
    store.feedback.withdraw_source("bad", "spam", by="op")
    worker.rewrite_withdrawn()
    assert first["span"] in spans.existing_spans(tmp_path / "spans" / spans.WITHDRAWN_DIR)
    now = span_of_batch(tmp_path / "spans", batch)
    assert now["span"] != first["span"] and now[spans.REPLACES] == first["span"]
    assert sorted(now[spans.SAMPLE_IDS]) == sorted(good) and now["examples"] == 3
    assert store.retrain.batches()[0]["span"] == now["span"]
    worker.rewrite_withdrawn()  # nothing left to do: the span stays
    assert span_of_batch(tmp_path / "spans", batch)["span"] == now["span"]
    store.close()


def test_samples_with_tags_the_pipelines_schema_lacks_wait_and_are_never_written(tmp_path):
    # The app's schema knows "rust" (a reviewed change shipped to it first); the
    # pipeline's does not yet. The worker must not write a span the gate would refuse.
    app_store = Opened.at(sqlite_url(tmp_path / "f.db"), KNOWN | {"rust"})
    kept = app_store.add(sent_by("a", "list comprehension")).id
    held = app_store.add(sent_by("b", "borrow checker", ("rust",))).id
    app_store.close()
    worker, store = worker_on(tmp_path)
    assert store.retrain.claimable() == 1
    batch, _ = store.retrain.claim()
    manifest = worker.write_span(batch)
    assert manifest[spans.SAMPLE_IDS] == [kept] and manifest["examples"] == 1
    with store.db.transaction() as t:
        row = t.run("SELECT batch_id, attempts FROM feedback WHERE id = ?", (held,)).fetchone()
    assert row == (None, 0)  # waits, untried, for the pipeline's schema to have the tag
    store.close()
    _, newer = worker_on(tmp_path, KNOWN | {"rust"})
    assert [s.id for s in newer.retrain.claim()[1]] == [held]
    newer.close()


# --- retraining on Vertex AI: only the aiplatform and Cloud Storage clients are faked ------

DATA_ROOT, SERVING_BASE = fake_aiplatform.DATA_ROOT, fake_aiplatform.SERVING_BASE
VERTEX_ARGS = fake_aiplatform.CLOUD


def vertex_worker(tmp_path, gcs) -> tuple[Worker, Opened]:
    """A worker retraining on Vertex AI, with the base data already in the bucket as span 0
    (uploaded as a local import wrote it)."""
    base = tmp_path / "base"
    spans.write_span(
        base,
        0,
        [spans.to_example_bytes(seed_tsv.Row("base title", ["python"]))],
        {spans.SOURCE: "train.tsv"},
    )
    for name in (spans.DATA_FILE, spans.MANIFEST_FILE):
        gcs.objects[f"proj-data/spans/span-0/{name}"] = (base / "span-0" / name).read_bytes()
    store = Opened.at(sqlite_url(tmp_path / "f.db"))
    settings = Settings(every=3, share=1.0, worker_id="w1")
    template = tmp_path / "so-tagger.json"  # compiled already; only the client reads it
    retrain = VertexRetrain(VERTEX_ARGS, warm_start=True, template=template, poll_seconds=0)
    return Worker(store.db, KNOWN, settings, retrain), store


def span_in_bucket(gcs, span: int) -> tuple[dict, list[tuple[str, list[str]]]]:
    """A span's manifest, and its examples (title, tags), read back from the bucket."""
    import tensorflow as tf

    folder = f"proj-data/spans/span-{span}"
    data = gcs.objects[f"{folder}/{spans.DATA_FILE}"]
    manifest = json.loads(gcs.objects[f"{folder}/{spans.MANIFEST_FILE}"])
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    path = Path(f"{os.environ.get('TMPDIR', '/tmp')}/span-{os.getpid()}.tfrecord")
    path.write_bytes(data)
    rows = []
    for record in tf.data.TFRecordDataset(str(path)):
        f = tf.train.Example.FromString(record.numpy()).features.feature
        rows.append(
            (
                f["title"].bytes_list.value[0].decode(),
                [t.decode() for t in f["tags"].bytes_list.value],
            )
        )
    path.unlink()
    return manifest, rows


def blessed_and_pushed(gcs, version: str):
    """How the fake job ends: blessed, pushed, the quality file published first (as the
    Pusher does)."""

    def end(job):
        quality = serving_layout.quality_record(version, {"micro_f1": 0.7, "micro_auc": 0.95}, 1.0)
        gcs.objects[f"proj-models/serving/tagger/quality/{version}.json"] = quality.encode()
        return fake_aiplatform.pushed(version, f"{SERVING_BASE}/tagger/{version}"), SUCCEEDED, ""

    return end


def test_on_vertex_the_worker_writes_its_span_to_the_bucket_and_reads_the_outcome_back(
    tmp_path, monkeypatch
):
    gcs = fake_gcs.install(monkeypatch)
    vertex = fake_aiplatform.install(monkeypatch, blessed_and_pushed(gcs, "1796000000"), polls=2)
    worker, store = vertex_worker(tmp_path, gcs)
    titles = [f"pandas groupby question {i}" for i in range(3)]
    ids = [store.add(sent_by(f"user{i}", t, ("pandas", "python"))).id for i, t in enumerate(titles)]

    done = worker.step()

    manifest, rows = span_in_bucket(gcs, 1)
    assert sorted(rows) == sorted((t, ["pandas", "python"]) for t in titles)
    assert manifest[spans.SOURCE] == spans.FEEDBACK_SOURCE and manifest["examples"] == 3
    assert manifest[spans.FEEDBACK_BATCH] == done["batch"]
    assert sorted(manifest[spans.SAMPLE_IDS]) == sorted(ids)
    (job,) = vertex.made
    assert job.resource_name == (
        "projects/proj/locations/europe-west4/pipelineJobs/"
        f"so-tagger-batch-{done['batch']}-span-1-{manifest['sha256'][:12]}"
    )
    assert job.kwargs["pipeline_root"] == "gs://proj-root/p" and job.kwargs["enable_caching"]
    assert job.calls == [("submit", {"service_account": "pipeline@proj.iam.gserviceaccount.com"})]
    assert done == {
        "batch": done["batch"],
        "span": 1,
        "outcome": "blessed",
        "version": "1796000000",
    }
    (batch,) = store.retrain.batches()
    assert (batch["span"], batch["span_sha256"]) == (1, manifest["sha256"])
    assert (batch["outcome"], batch["model_version"]) == ("blessed", "1796000000")
    with store.db.transaction() as t:
        (detail,) = t.run("SELECT detail FROM retrain").fetchone()
    assert "pushed version 1796000000" in detail and "micro_f1 0.7000" in detail
    assert worker.step() is None  # nothing waits
    assert len(vertex.made) == 1
    store.close()


def test_a_worker_killed_while_its_job_runs_follows_that_job_again_and_submits_it_once(
    tmp_path, monkeypatch
):
    gcs = fake_gcs.install(monkeypatch)
    vertex = fake_aiplatform.install(monkeypatch, blessed_and_pushed(gcs, "1796000001"), polls=3)
    worker, store = vertex_worker(tmp_path, gcs)
    for i in range(3):
        store.add(sent_by(f"user{i}", f"numpy broadcasting {i}", ("numpy",)))
    vertex.kill_on_poll = 2  # the lookup before submitting is the first
    with pytest.raises(fake_aiplatform.Killed):
        worker.step()
    assert len(vertex.submitted) == 1 and store.retrain.batches()[0]["span"] == 1
    store.close()

    again, store = vertex_worker(tmp_path, gcs)  # the restarted worker: same id, same store
    done = again.step()
    assert done["outcome"] == "blessed" and done["version"] == "1796000001" and done["span"] == 1
    assert len(vertex.submitted) == 1  # followed, not submitted again
    assert sorted(k for k in gcs.objects if k.startswith("proj-data/")) == [
        f"proj-data/spans/span-{n}/{name}"
        for n in (0, 1)
        for name in (spans.MANIFEST_FILE, spans.DATA_FILE)
    ]
    store.close()


def test_a_failed_vertex_job_withdraws_its_span_in_the_bucket_and_gives_its_samples_back(
    tmp_path, monkeypatch
):
    gcs = fake_gcs.install(monkeypatch)
    failed = [fake_aiplatform.task("Transform", state="FAILED")]
    fake_aiplatform.install(
        monkeypatch, lambda job: (failed, "PIPELINE_STATE_FAILED", "Transform: out of memory")
    )
    worker, store = vertex_worker(tmp_path, gcs)
    for i in range(3):
        store.add(sent_by(f"user{i}", f"flask routing {i}", ("python",)))
    done = worker.step()
    assert done["outcome"] == "failed"
    with store.db.transaction() as t:
        (detail,) = t.run("SELECT detail FROM retrain").fetchone()
    assert "PIPELINE_STATE_FAILED: Transform: out of memory" in detail
    assert not any(k.startswith("proj-data/spans/span-1/") for k in gcs.objects)
    record = json.loads(gcs.objects["proj-data/spans/withdrawn/span-1/WITHDRAWN.json"])
    assert record["span"] == 1 and "out of memory" in record["reason"]
    assert f"proj-data/spans/withdrawn/span-1/{spans.DATA_FILE}" in gcs.objects
    assert store.retrain.claimable(batch_size=3) == 3  # given back for a later batch
    store.close()


def test_the_worker_lets_a_running_scheduled_job_end_before_it_submits(tmp_path, monkeypatch):
    gcs = fake_gcs.install(monkeypatch)
    vertex = fake_aiplatform.install(monkeypatch, blessed_and_pushed(gcs, "1796000002"), polls=2)
    worker, store = vertex_worker(tmp_path, gcs)
    # A run of the schedule (vertex_runner.py --schedule) is under way.
    scheduled = vertex_jobs.make_job(worker.retrain.args, tmp_path / "so-tagger.json")
    scheduled.submit(service_account="pipeline@proj.iam.gserviceaccount.com")
    for i in range(3):
        store.add(sent_by(f"user{i}", f"django orm filter {i}", ("django",)))
    done = worker.step()
    assert done["outcome"] == "blessed"
    (mine,) = [job.resource_name for job in vertex.made if "batch" in job.resource_name]
    assert vertex.events == [
        ("submit", scheduled.resource_name),
        ("end", scheduled.resource_name),
        ("submit", mine),
        ("end", mine),
    ]
    store.close()
