"""The learning loop end to end on a slice: feedback through the app's API, the worker
killed in the middle of a retrain and started again, a new version pushed, picked up by
the model server, and reported by /api/predict; every sample in exactly one span."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contract import serving_layout
from ingest import spans
from tests.commands import REPO, run_module
from tests.mlmd import INPUT, OUTPUT, Store
from tests.model_server_process import app_server, model_server, wait_for
from tests.stores import make_token

EVERY = 20
# A slice this small trains a weak model: the gate checks that gating runs, not quality.
RUNNER = [
    "--train-steps",
    "30",
    "--epochs",
    "2",
    "--workers",
    "0",
    "--floors",
    "auc=0.5",
    "--blessing-tolerance",
    "1",
]


@pytest.fixture(scope="module")
def loop(tmp_path_factory, first_pipeline_run):
    """The state a first pipeline run on the slice leaves (span 0, ML Metadata, the pushed
    version), copied from the end-to-end runs' first run; then the model server, the app
    and the worker's command line."""
    root = tmp_path_factory.mktemp("loop")
    where = {
        "spans": first_pipeline_run.spans,
        "metadata": first_pipeline_run.metadata,
        "serving": first_pipeline_run.serving,
        "feedback": root / "feedback.db",
    }
    pipeline_paths = [
        "--pipeline-root",
        str(root / "pipeline"),
        "--serving-dir",
        str(where["serving"]),
        "--logs-dir",
        str(root / "logs"),
    ]
    worker_argv = [
        sys.executable,
        "-m",
        "learning",
        "--every",
        str(EVERY),
        "--poll-seconds",
        "0.2",
        "--feedback",
        str(where["feedback"]),
        "--spans-dir",
        str(where["spans"]),
        "--metadata",
        str(where["metadata"]),
        "--",
        *pipeline_paths,
        *RUNNER,
    ]
    token = make_token(str(where["feedback"]), "loop-reviewer", "reviewer")
    reviewer = {"Authorization": f"Bearer {token}"}
    # The app as behind the Ingress: many clients reach it through one trusted proxy, so
    # each sample below comes from a source of its own (a batch caps each source's share).
    with (
        model_server(
            "--model_name=tagger",
            f"--model_base_path={where['serving'] / 'tagger'}",
            "--file_system_poll_wait_seconds=0.2",
            log_dir=root,
        ) as models,
        app_server(
            f"--model-url=http://127.0.0.1:{models.port}",
            f"--feedback={where['feedback']}",
            f"--model-base-path={where['serving'] / 'tagger'}",
            "--trusted-proxy=127.0.0.1/32",
            log_dir=root,
        ) as app,
    ):
        app.reviewer = reviewer
        yield root, where, app, worker_argv


def client(n: int) -> dict[str, str]:
    """The header the trusted proxy adds for the nth client."""
    return {"X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}


def start_worker(argv, log):
    # Its own session: killing it kills the pipeline run it started, as a crash would.
    return subprocess.Popen(
        argv,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ.copy(),
    )


def span_rows(spans_dir: Path, span: int) -> list[tuple[str, tuple[str, ...]]]:
    import tensorflow as tf

    rows = []
    for record in tf.data.TFRecordDataset(str(spans.span_dir(spans_dir, span) / spans.DATA_FILE)):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        rows.append(
            (
                feature["title"].bytes_list.value[0].decode(),
                tuple(t.decode() for t in feature["tags"].bytes_list.value),
            )
        )
    return rows


def split_titles(examples_uri: str, split: str) -> set[str]:
    import tensorflow as tf

    files = tf.io.gfile.glob(f"{examples_uri}/Split-{split}/*")
    return {
        tf.train.Example.FromString(r.numpy())
        .features.feature["title"]
        .bytes_list.value[0]
        .decode()
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    }


def batches(database) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT id, span, outcome, model_version FROM retrain").fetchall()


def test_feedback_retrains_and_the_new_version_is_served(loop, data_slice):
    root, where, app, worker_argv = loop
    first_version = app.post("/api/predict", {"title": "python dict"}).json()["model_version"]
    titles = [
        line.split("\t")[0] for line in (data_slice / "more.tsv").read_text().splitlines()[1:]
    ]
    # A few people use a spelling the model does not know; a reviewer makes it an alias.
    for i, title in enumerate(titles[:3]):
        sent = {"title": title, "actual": ["pythonic"], "model_version": first_version}
        reply = app.post("/api/feedback", sent, headers=client(1000 + i))
        assert reply.status == 201 and reply.json()["status"] == "pending_review"
    decided = app.post(
        "/api/review/tags/pythonic:accept", {"alias_of": "python"}, headers=app.reviewer
    )
    assert decided.json()["samples_released"] == 3
    for i, title in enumerate(titles[3:EVERY]):
        sent = {
            "title": title,
            "actual": ["python", "list"][: 1 + i % 2],
            "model_version": first_version,
        }
        reply = app.post("/api/feedback", sent, headers=client(i))
        assert reply.status == 201 and reply.json()["status"] == "accepted"
    nth_sample_at = time.monotonic()

    with open(root / "worker-1.log", "wb") as log:
        worker = start_worker(worker_argv, log)
        # Kill it once the batch is claimed and its span written, while the pipeline runs.
        wait_for(lambda: any(b[1] is not None for b in batches(where["feedback"])), 120, 0.1)
        time.sleep(3)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    ((batch, span, outcome, _),) = batches(where["feedback"])
    assert outcome is None  # the crash left the batch unfinished
    with open(root / "worker-2.log", "wb") as log:
        worker = start_worker(worker_argv, log)
        try:
            wait_for(lambda: batches(where["feedback"])[0][2] is not None, 400, 0.5)

            def new_version():
                reply = app.post("/api/predict", {"title": "python dict"}).json()
                return reply["model_version"] if reply["model_version"] != first_version else None

            version = wait_for(new_version, 60, 0.2)
            seconds = time.monotonic() - nth_sample_at
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
    ((batch, span, outcome, pushed),) = batches(where["feedback"])
    assert (outcome, pushed) == ("blessed", version)
    print(f"\nNth sample to new version served: {seconds:.1f} s (one crash included)")

    # Every sample is in exactly one span: the restart reused the span the crash left.
    feedback_spans = [
        spans.read_manifest(where["spans"], n)
        for n in spans.existing_spans(where["spans"])
        if spans.read_manifest(where["spans"], n).get(spans.FEEDBACK_BATCH) is not None
    ]
    assert [m["span"] for m in feedback_spans] == [span]
    with sqlite3.connect(where["feedback"]) as db:
        ids = [i for (i,) in db.execute("SELECT id FROM feedback ORDER BY id")]
    assert feedback_spans[0][spans.SAMPLE_IDS] == ids
    # The aliased samples were trained on as the known tag, so the schema's gate passed.
    trained = span_rows(where["spans"], span)
    assert {tags for title, tags in trained if title in titles[:3]} == {("python",)}
    # Feedback went to training only: the evaluation data is the base span's alone.
    (examples,) = Store(where["metadata"]).artifacts(
        Store(where["metadata"]).execution(-1, "SpanExampleGen"), OUTPUT, "examples"
    )
    evaluated = split_titles(examples.uri, "eval") | split_titles(examples.uri, "test")
    assert evaluated and not evaluated & {title for title, _ in trained}
    assert {title for title, _ in trained} <= split_titles(examples.uri, "train")

    # The lineage command names the feedback span behind the served model.
    out = run_module("-m", "pipeline.lineage", "--metadata", str(where["metadata"])).stdout
    assert '"feedback_batch": 1' in out and feedback_spans[0]["sha256"] in out
    # The first scrape since the new version already has its quality, as published.
    metrics = app.metrics().body.decode()
    assert 'stackoverflow_tagger_retrain_runs_total{outcome="blessed"} 1' in metrics
    published = json.loads(
        Path(serving_layout.quality_path(str(where["serving"] / "tagger"), version)).read_text()
    )["metrics"]
    assert f"stackoverflow_tagger_model_version {version}\n" in metrics
    assert f"stackoverflow_tagger_f1_score {published['micro_f1_score']}\n" in metrics

    # The retrain started from the weights of the model it replaced (the Trainer's
    # base_model input), and did not fall back to training from scratch.
    store = Store(where["metadata"])
    (first_model,) = store.artifacts(store.execution(0, "Trainer"), OUTPUT, "model")
    retrain = store.execution(-1, "Trainer")
    (base,) = store.artifacts(retrain, INPUT, "base_model")
    assert base.id == first_model.id
    (model_run,) = store.artifacts(retrain, OUTPUT, "model_run")
    summary = json.loads((Path(model_run.uri) / "training_summary.json").read_text())
    assert summary["warm_started_from"].startswith(first_model.uri)


def test_up_starts_all_three_and_ctrl_c_stops_them(tmp_path, tagger_model):
    import shutil

    from tests.model_server_process import Server, free_ports

    shutil.copytree(tagger_model, tmp_path / "serving" / "tagger" / "5")
    app_port, model_port, metrics_port = free_ports(3)
    env = {**os.environ, "TAGGER_BUILD_DIR": str(tmp_path)}
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.up",
            f"--app-port={app_port}",
            f"--model-port={model_port}",
            f"--metrics-port={metrics_port}",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert f"app :{app_port}" in up.stdout.readline()
        assert f"open http://127.0.0.1:{app_port}/" in up.stdout.readline()
        app = Server(app_port, up, tmp_path / "logs" / "app.log")
        wait_for(lambda: _ready(app), 120, 0.5)
        assert b"StackOverflow tagger" in app.get("/").body
        up.send_signal(signal.SIGINT)
        assert up.wait(90) == 0
        assert "stopped model server, app and worker" in up.stdout.read()
    finally:
        if up.poll() is None:
            up.kill()
    children = subprocess.run(
        ["pgrep", "-f", f"--port={app_port}|--rest_api_port={model_port}"],
        capture_output=True,
        text=True,
    ).stdout
    assert children == ""


def _ready(app) -> bool:
    try:
        return app.get("/api/ready").status == 200
    except OSError:
        return False


def test_an_unblessed_retrain_keeps_the_served_model_and_is_not_retried(loop, data_slice):
    root, where, app, worker_argv = loop
    served = app.post("/api/predict", {"title": "python dict"}).json()["model_version"]
    tree = sorted(p.name for p in (where["serving"] / "tagger").iterdir())
    titles = [
        line.split("\t")[0] for line in (data_slice / "more.tsv").read_text().splitlines()[1:]
    ]
    for n, title in enumerate(titles[EVERY : 2 * EVERY]):
        sent = {"title": title, "actual": ["java"]}
        assert app.post("/api/feedback", sent, headers=client(n)).status == 201
    # A floor no model reaches: the Evaluator blesses nothing.
    once = [*worker_argv[:3], "--once", *worker_argv[3:], "--floors", "auc=0.9999"]
    run = subprocess.run(once, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    last = batches(where["feedback"])[-1]
    assert last[2] == "not_blessed" and last[3] is None
    with sqlite3.connect(where["feedback"]) as db:
        (detail,) = db.execute("SELECT detail FROM retrain WHERE id = ?", (last[0],)).fetchone()
    assert detail.startswith("nothing pushed: the Evaluator did not bless the model (failed: auc=")
    assert sorted(p.name for p in (where["serving"] / "tagger").iterdir()) == tree
    assert app.post("/api/predict", {"title": "python dict"}).json()["model_version"] == served
    # The samples stay used: the next step finds nothing to do.
    count = len(batches(where["feedback"]))
    again = subprocess.run(once, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and '"outcome"' not in again.stdout
    assert len(batches(where["feedback"])) == count
    assert 'stackoverflow_tagger_retrain_runs_total{outcome="not_blessed"} 1' in (
        app.metrics().body.decode()
    )


def test_a_failed_retrain_is_recorded_its_span_withdrawn_and_its_samples_given_back(
    loop, data_slice
):
    root, where, app, worker_argv = loop
    served = app.post("/api/predict", {"title": "python dict"}).json()["model_version"]
    titles = [
        line.split("\t")[0] for line in (data_slice / "more.tsv").read_text().splitlines()[1:]
    ]
    for n, title in enumerate(titles[2 * EVERY : 3 * EVERY]):
        sent = {"title": title, "actual": ["sql"]}
        assert app.post("/api/feedback", sent, headers=client(n)).status == 201
    # A setting the runner refuses: the run fails before any component starts.
    once = [*worker_argv[:3], "--once", *worker_argv[3:], "--floors", "bogus=1"]
    run = subprocess.run(once, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    batch, span, outcome, version = batches(where["feedback"])[-1]
    assert (outcome, version) == ("failed", None)
    with sqlite3.connect(where["feedback"]) as db:
        (detail,) = db.execute("SELECT detail FROM retrain WHERE id = ?", (batch,)).fetchone()
    assert detail.startswith("nothing pushed: the run did not start")
    # Its span is withdrawn, so it cannot block the next batch; its samples did nothing
    # wrong and are given back for a later batch (one attempt counted).
    assert span not in spans.existing_spans(where["spans"])
    assert span in spans.existing_spans(where["spans"] / spans.WITHDRAWN_DIR)
    assert app.post("/api/predict", {"title": "python dict"}).json()["model_version"] == served
    with sqlite3.connect(where["feedback"]) as db:
        given_back = db.execute(
            "SELECT batch_id, attempts FROM feedback WHERE actual = '[\"sql\"]'"
        ).fetchall()
    assert given_back == [(None, 1)] * EVERY
