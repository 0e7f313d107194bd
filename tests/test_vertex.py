"""The pipeline on Vertex AI Pipelines, proved offline.

The job is compiled by `vertex_runner.py compile` as a user runs it. Its JSON is parsed
into kfp's PipelineJob and PipelineSpec protos and compared with the local pipeline's
DAG; then its tasks run here, each through the exact command and arguments the spec
gives, with the executor input Vertex would pass (tests/vertex_launcher.py), on a feedback
span the learning worker's bucket writer made. Only clients are faked: Vertex AI's for
--submit and --schedule, Cloud Storage's for that writer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format

import vertex_runner
from contract import paths, serving_layout
from ingest import seed_tsv, spans
from learning import span_store
from learning.retrain import VertexRetrain
from pipeline import configs, vertex_jobs
from tests import fake_aiplatform, fake_gcs
from tests.commands import REPO, run_module
from tests.model_server_process import model_server
from tests.vertex_launcher import Launcher, load_job

IMAGE = fake_aiplatform.IMAGE
CLOUD = [*fake_aiplatform.CLOUD, "--labels", "team=ml,env=test"]
DATAFLOW = [
    "--runner=DataflowRunner",
    "--project=proj",
    "--region=europe-west4",
    "--temp_location=gs://proj-root/p/dataflow-tmp",
    "--machine_type=n1-standard-4",
    "--max_num_workers=4",
    f"--sdk_container_image={IMAGE}",
    "--experiments=use_runner_v2",
    "--service_account_email=pipeline@proj.iam.gserviceaccount.com",
    "--labels=team=ml",
    "--labels=env=test",
]
# The Vertex compiler splits the latest-blessed-model resolver into two query tasks.
RESOLVER = "latest_blessed_model_resolver"
RESOLVER_TASKS = {f"{RESOLVER}-model-blessing-resolver", f"{RESOLVER}-model-resolver"}


def compile_job(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "so-tagger.json"
    run_module("vertex_runner.py", "compile", *extra, "--output", str(out))
    return out


@pytest.fixture(scope="module")
def cloud_job():
    """The job as the learning worker compiles it before it submits one: by starting
    `vertex_runner.py compile` with its flags, as a user would (learning/retrain.py)."""
    return load_job(VertexRetrain(tuple(CLOUD), warm_start=False).compiled())


def local_dag() -> dict[str, set[str]]:
    """Node id -> upstream node ids of the pipeline local_runner.py runs."""
    import local_runner

    args = local_runner.parse_args([])
    return {
        n.id: {u.id for u in n.upstream_nodes} for n in local_runner.build_pipeline(args).components
    }


def test_the_compiled_job_parses_into_kfp_protos_with_every_component(cloud_job):
    job, spec, deployment = cloud_job
    assert spec.pipeline_info.name == configs.PIPELINE_NAME
    assert job.runtime_config.gcs_output_directory == "gs://proj-root/p"
    local = set(local_dag())
    assert set(spec.root.dag.tasks) == (local - {RESOLVER}) | RESOLVER_TASKS


def test_task_dependencies_match_the_local_dag(cloud_job):
    _, spec, _ = cloud_job
    expected = {}
    for node, upstream in local_dag().items():
        if node == RESOLVER:
            continue
        ids = {u for u in upstream if u != RESOLVER}
        if RESOLVER in upstream:
            ids.add(f"{RESOLVER}-model-resolver")
        expected[node] = ids
    compiled = {n: set(t.dependent_tasks) for n, t in spec.root.dag.tasks.items()}
    assert {n: compiled[n] for n in expected} == expected
    assert compiled["Transform"] >= {"AnomaliesGate"}  # nothing reads data the gate has not passed


def test_every_container_runs_the_pipeline_image_with_the_dataflow_arguments(cloud_job):
    _, spec, deployment = cloud_job
    containers = {
        n: e.container for n, e in deployment.executors.items() if e.HasField("container")
    }
    # Resolvers and the hyperparameters importer are Vertex's own tasks, not containers.
    assert len(containers) == len(spec.root.dag.tasks) - len(RESOLVER_TASKS) - 1
    for name, container in containers.items():
        assert container.image == IMAGE, name
        assert container.args[-len(DATAFLOW) :] == DATAFLOW, name
        command = list(container.command)
        assert command == [
            "python",
            "-m",
            "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor",
        ], name


def test_locations_and_module_code_come_from_flags_and_the_package(cloud_job):
    _, spec, _ = cloud_job
    tasks = spec.root.dag.tasks

    def parameter(task: str, name: str) -> str:
        return tasks[task].inputs.parameters[name].runtime_value.constant_value.string_value

    assert parameter("SpanExampleGen", "input_base") == "gs://proj-data/spans"
    assert parameter("ImportSchemaGen", "schema_file") == "/pipeline/schema/schema.pbtxt"
    assert parameter("tuned_hyperparameters", "artifact_uri") == "/pipeline/hyperparameters/default"
    assert parameter("Transform", "preprocessing_fn") == configs.PREPROCESSING_FN
    assert parameter("Trainer", "run_fn") == configs.RUN_FN
    push = json.loads(parameter("AtomicPusher", "push_destination"))
    assert push["filesystem"]["base_directory"] == "gs://proj-models/serving/tagger"
    text = json.dumps(json_format.MessageToDict(spec))
    assert "/work/" not in text and str(REPO) not in text  # nothing of this machine


def test_the_image_workdir_is_where_the_compiled_job_looks_for_the_schema():
    dockerfile = (REPO / "deploy" / "pipeline" / "Dockerfile").read_text()
    assert f"WORKDIR {vertex_runner.IMAGE_CHECKOUT}\n" in dockerfile
    assert "--require-hashes -r /tmp/requirements.lock" in dockerfile
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    assert final.startswith("python:3.13-slim-trixie@sha256:") and "\nUSER 10001\n" in final


def test_an_untuned_encoder_run_trains_with_that_settings_reviewed_values(tmp_path):
    _, spec, _ = load_job(compile_job(tmp_path, *CLOUD, "--encoder"))
    importer = spec.root.dag.tasks["tuned_hyperparameters"].inputs.parameters["artifact_uri"]
    uri = importer.runtime_value.constant_value.string_value
    assert uri == f"{vertex_runner.IMAGE_CHECKOUT}/{paths.HYPERPARAMETERS_DIRS[True]}"
    assert paths.hyperparameters_file(True).is_file()  # the image copies the checkout's


def test_tuning_and_the_encoder_compile_into_the_pipeline_image(tmp_path):
    _, spec, deployment = load_job(compile_job(tmp_path, *CLOUD, "--tune", "8", "--encoder"))
    tasks = spec.root.dag.tasks
    transform = tasks["Transform"].inputs.parameters["preprocessing_fn"]
    assert transform.runtime_value.constant_value.string_value == (
        configs.PREPROCESSING_FN_WITH_ENCODER
    )
    assert "Tuner" in tasks and "tuned_hyperparameters" not in tasks
    source = tasks["Trainer"].inputs.artifacts["hyperparameters"].task_output_artifact
    assert (source.producer_task, source.output_artifact_key) == ("Tuner", "best_hyperparameters")
    tuner = deployment.executors[spec.components["Tuner"].executor_label].container
    assert tuner.image == IMAGE
    config = json.loads(
        tasks["Tuner"].inputs.parameters["custom_config"].runtime_value.constant_value.string_value
    )
    assert config["max_trials"] == 8 and config["epochs"] == configs.TUNING_EPOCHS
    assert tasks["Tuner"].inputs.parameters[
        "tuner_fn"
    ].runtime_value.constant_value.string_value == (configs.TUNER_FN)


def test_the_trainer_can_run_as_a_vertex_custom_job(tmp_path):
    _, spec, deployment = load_job(
        compile_job(
            tmp_path,
            *CLOUD,
            "--trainer-on-vertex",
            "--training-machine-type",
            "n1-highmem-8",
            "--accelerator-type",
            "NVIDIA_TESLA_T4",
            "--accelerator-count",
            "2",
        )
    )
    trainer = deployment.executors[spec.components["Trainer"].executor_label].container
    assert "tfx.extensions.google_cloud_ai_platform.trainer.executor" in " ".join(trainer.args)
    config = json.loads(
        spec.root.dag.tasks["Trainer"]
        .inputs.parameters["custom_config"]
        .runtime_value.constant_value.string_value
    )
    assert config["ai_platform_enable_vertex"] is True
    assert config["ai_platform_vertex_region"] == "europe-west4"
    (pool,) = config["ai_platform_training_args"]["worker_pool_specs"]
    assert pool["container_spec"]["image_uri"] == IMAGE
    assert pool["machine_spec"] == {
        "machine_type": "n1-highmem-8",
        "accelerator_type": "NVIDIA_TESLA_T4",
        "accelerator_count": 2,
    }


def test_missing_locations_are_named():
    proc = run_module("vertex_runner.py", "compile", "--image", IMAGE, check=False)
    assert proc.returncode == 2
    assert "missing --data-root, --pipeline-root, --project, --region, --serving-base" in (
        proc.stderr
    )


# --- submitting, with only the Vertex AI client faked --------------------------------------


@pytest.fixture
def fake_vertex(monkeypatch):
    monkeypatch.setattr(vertex_runner, "compile_pipeline", lambda args: args.output)
    return fake_aiplatform.install(
        monkeypatch,
        lambda job: (fake_aiplatform.pushed("17", "gs://m/tagger/17"), vertex_jobs.SUCCEEDED, ""),
    )


def test_submit_and_wait_call_the_aiplatform_client(fake_vertex, tmp_path, capsys):
    out = tmp_path / "job.json"
    assert vertex_runner.main(["compile", *CLOUD, "--output", str(out), "--submit", "--wait"]) == 0
    assert fake_vertex.inits == [{"project": "proj", "location": "europe-west4"}]
    (job,) = fake_vertex.made
    assert job.kwargs == {
        "display_name": "so-tagger",
        "template_path": str(out),
        "pipeline_root": "gs://proj-root/p",
        "enable_caching": True,
        "labels": {"team": "ml", "env": "test"},
        "project": "proj",
        "location": "europe-west4",
    }
    assert job.calls == [("submit", {"service_account": "pipeline@proj.iam.gserviceaccount.com"})]
    printed = capsys.readouterr().out
    assert "submitted projects/proj/locations/europe-west4/pipelineJobs/so-tagger-123" in printed
    assert (
        "https://console.cloud.google.com/vertex-ai/locations/europe-west4/pipelines/runs/"
        "so-tagger-123?project=proj"
    ) in printed
    assert "  Trainer                          ran          42.0 s" in printed
    assert "ended: PIPELINE_STATE_SUCCEEDED; pushed version 17 to gs://m/tagger/17" in printed


def test_schedule_calls_the_aiplatform_client(fake_vertex, tmp_path, capsys):
    out = tmp_path / "job.json"
    assert (
        vertex_runner.main(
            ["compile", *CLOUD, "--output", str(out), "--schedule", "0 3 * * 1", "--no-cache"]
        )
        == 0
    )
    (job,) = fake_vertex.made
    assert job.kwargs["enable_caching"] is False
    assert job.calls == [
        (
            "create_schedule",
            {
                "cron": "0 3 * * 1",
                "display_name": "so-tagger-schedule",
                "service_account": "pipeline@proj.iam.gserviceaccount.com",
            },
        )
    ]
    assert "schedule projects/1/schedules/7: 0 3 * * 1" in capsys.readouterr().out


# --- the compiled tasks, run as Vertex would run them ---------------------------------------


def feedback_span_as_the_worker_writes_it(monkeypatch, spans_dir: Path) -> dict:
    """A feedback span written into a bucket by the learning worker's bucket writer, then
    copied object by object to spans_dir: the layout the compiled job reads there."""
    gcs = fake_gcs.install(monkeypatch)
    rows = [seed_tsv.Row(f"how to sort a dict by value {i}", ["python"]) for i in range(20)]
    extra = {
        spans.SOURCE: spans.FEEDBACK_SOURCE,
        spans.FEEDBACK_BATCH: 1,
        spans.SAMPLE_IDS: list(range(20)),
    }
    bucket = span_store.BucketSpans("gs://proj-data/spans")
    (span_0,) = span_store.LocalSpans(spans_dir).manifests()
    for name in (spans.DATA_FILE, spans.MANIFEST_FILE):  # the base span is in the bucket too
        gcs.objects[f"proj-data/spans/span-0/{name}"] = (spans_dir / "span-0" / name).read_bytes()
    manifest = bucket.write(map(spans.to_example_bytes, rows), extra)
    for key, data in gcs.objects.items():
        target = spans_dir / key.removeprefix("proj-data/spans/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    assert span_0["span"] == 0
    return manifest


def test_the_compiled_tasks_run_here_twice_and_push_a_servable_model(
    tmp_path, data_slice, monkeypatch
):
    spans_dir, serving = tmp_path / "spans", tmp_path / "serving"
    run_module("-m", "ingest", "--data-dir", str(data_slice), "--spans-dir", str(spans_dir))
    feedback = feedback_span_as_the_worker_writes_it(monkeypatch, spans_dir)
    job = compile_job(
        tmp_path,
        "--pipeline-root",
        str(tmp_path / "root"),
        "--data-root",
        str(spans_dir),
        "--serving-base",
        str(serving),
        "--image",
        IMAGE,
        "--beam-runner",
        "DirectRunner",
        "--direct-workers",
        "0",
        "--train-steps",
        "30",
        "--epochs",
        "2",
        "--floors",
        "auc=0.5",
    )
    # The image's checkout (/pipeline) is this checkout here.
    job.write_text(job.read_text().replace(vertex_runner.IMAGE_CHECKOUT + "/", f"{REPO}/"))
    launcher = Launcher(job, tmp_path)
    first = launcher.run()
    ran = {name for name, task in first.items() if task.state == "ran"}
    assert ran == set(first) - RESOLVER_TASKS - {"tuned_hyperparameters"}
    (imported,) = first["tuned_hyperparameters"].outputs["result"]
    assert imported.uri == str(paths.hyperparameters_dir(False))
    assert all(
        not t.outputs["model" if "model-resolver" in n else "model_blessing"]
        for n, t in first.items()
        if n in RESOLVER_TASKS
    )
    examples = first["SpanExampleGen"].outputs["examples"][0].metadata
    read = json.loads(examples["spans"])
    assert [s["span"] for s in read] == [0, 1]
    assert read[1]["sha256"] == feedback["sha256"] and read[1]["examples"] == 20
    assert read[1][spans.SOURCE] == spans.FEEDBACK_SOURCE and read[1][spans.FEEDBACK_BATCH] == 1
    pushed = first["AtomicPusher"].outputs["pushed_model"][0].metadata
    assert pushed["pushed"] == 1
    version = pushed["pushed_version"]
    # The version, and the Evaluator's metrics published beside it for clients without MLMD.
    model_dir = serving / serving_layout.MODEL_NAME
    assert sorted(p.name for p in model_dir.iterdir()) == [version, "quality"]
    quality = serving_layout.quality_path(str(model_dir), version)
    assert json.loads(Path(quality).read_text())["metrics"]["micro_auc"] > 0.5

    with model_server(
        "--model_name=tagger", f"--model_base_path={serving / 'tagger'}", log_dir=tmp_path
    ) as server:
        status = server.get("/v1/models/tagger").json()["model_version_status"]
        assert status[0]["version"] == version and status[0]["state"] == "AVAILABLE"
        reply = server.post("/v1/models/tagger:predict", {"instances": ["merge dicts in python"]})
        assert reply.status == 200 and len(reply.json()["predictions"][0]["scores"]) == 100

    # A second run: the resolver now finds the first run's blessed model, and the
    # Evaluator compares the new model against it.
    second = launcher.run()
    (model,) = first["Trainer"].outputs["model"]
    resolved = second[f"{RESOLVER}-model-resolver"].outputs["model"]
    assert [(a.name, a.uri) for a in resolved] == [(model.name, model.uri)]
    # Vertex's execution cache (the job's enable_caching): same data, same inputs, so the
    # data path is not run again; the Evaluator has a baseline now, so it runs.
    states = {name: task.state for name, task in second.items()}
    data_path = ("SpanExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer")
    assert {n: states[n] for n in data_path} == dict.fromkeys(data_path, "cached")
    assert states["Evaluator"] == "ran"
    assert second["Trainer"].outputs["model"][0].uri == model.uri
    blessing = second["Evaluator"].outputs["blessing"][0].metadata
    assert blessing["baseline_model"] == model.uri
    assert blessing["blessed"] == 1  # within the tolerance of its baseline
