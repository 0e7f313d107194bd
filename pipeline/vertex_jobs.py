"""Vertex AI PipelineJobs of the compiled pipeline: the flags that say where things live
on Google Cloud, and a job's life: submitted once, followed to its end, read there.

vertex_runner.py (compile, --submit, --schedule) and the learning worker's Vertex path
both go through here, so a job the worker starts is the job a user would start. Only
the `google.cloud.aiplatform` client talks to Google Cloud: tests fake that client.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

from contract import metadata_names as names
from contract import paths, serving_layout
from pipeline import configs, run_report, runner_flags

DEFAULT_OUTPUT = paths.build_dir() / "vertex" / f"{configs.PIPELINE_NAME}.json"
CONSOLE_RUN_URL = (
    "https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/runs/{job}"
    "?project={project}"
)
SUCCEEDED, RUNNING = "PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_RUNNING"
FINAL_STATES = {SUCCEEDED, "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def parse_args(
    argv: list[str] | None, description: str = "Compile the pipeline for Vertex AI Pipelines"
) -> argparse.Namespace:
    """vertex_runner.py's command line: `compile`, then flags (or their environment
    variables) for where things live and how the run goes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("command", choices=["compile"], help="compile the PipelineJob JSON")
    where = p.add_argument_group("where things live (flag, or the environment variable named)")
    where.add_argument("--project", default=_env("TAGGER_GCP_PROJECT"), help="TAGGER_GCP_PROJECT")
    where.add_argument("--region", default=_env("TAGGER_GCP_REGION"), help="TAGGER_GCP_REGION")
    where.add_argument(
        "--pipeline-root",
        default=_env("TAGGER_VERTEX_PIPELINE_ROOT"),
        help="gs:// artifact prefix; TAGGER_VERTEX_PIPELINE_ROOT",
    )
    where.add_argument(
        "--data-root",
        default=_env("TAGGER_VERTEX_SPANS_DIR"),
        help="gs:// prefix of span-N/ folders; TAGGER_VERTEX_SPANS_DIR",
    )
    where.add_argument(
        "--serving-base",
        default=_env("TAGGER_VERTEX_SERVING_BASE"),
        help="gs:// TF Serving base path; the model goes to "
        f"<base>/{serving_layout.MODEL_NAME}/<version>; "
        "TAGGER_VERTEX_SERVING_BASE",
    )
    where.add_argument(
        "--image",
        default=_env("TAGGER_PIPELINE_IMAGE"),
        help="pipeline image (deploy/pipeline/Dockerfile), by digest; TAGGER_PIPELINE_IMAGE",
    )
    where.add_argument(
        "--service-account",
        default=_env("TAGGER_VERTEX_SERVICE_ACCOUNT"),
        help="TAGGER_VERTEX_SERVICE_ACCOUNT",
    )
    where.add_argument(
        "--labels",
        default=_env("TAGGER_VERTEX_LABELS", ""),
        help="k=v,... for the job and Dataflow; TAGGER_VERTEX_LABELS",
    )
    where.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    beam = p.add_argument_group("Beam (StatisticsGen, Transform, Evaluator, ExampleGen)")
    beam.add_argument(
        "--beam-runner",
        choices=["DataflowRunner", "DirectRunner"],
        default=_env("TAGGER_BEAM_RUNNER", "DataflowRunner"),
    )
    beam.add_argument(
        "--dataflow-temp-location",
        default=_env("TAGGER_DATAFLOW_TEMP"),
        help="gs:// prefix; default <pipeline root>/dataflow-tmp",
    )
    beam.add_argument(
        "--dataflow-region", default=_env("TAGGER_DATAFLOW_REGION"), help="default: --region"
    )
    beam.add_argument(
        "--dataflow-machine-type", default=_env("TAGGER_DATAFLOW_MACHINE_TYPE", "n1-standard-4")
    )
    beam.add_argument(
        "--dataflow-max-workers", type=int, default=int(_env("TAGGER_DATAFLOW_MAX_WORKERS", "4"))
    )
    beam.add_argument(
        "--direct-workers", type=int, default=2, help="DirectRunner processes (0: in-process)"
    )
    train = p.add_argument_group("the Trainer as a Vertex AI custom job")
    train.add_argument("--trainer-on-vertex", action="store_true")
    train.add_argument(
        "--training-machine-type", default=_env("TAGGER_TRAINING_MACHINE_TYPE", "n1-standard-8")
    )
    train.add_argument(
        "--accelerator-type",
        default=_env("TAGGER_TRAINING_ACCELERATOR"),
        help="e.g. NVIDIA_TESLA_T4; none by default",
    )
    train.add_argument("--accelerator-count", type=int, default=1)
    run = p.add_argument_group("submitting")
    run.add_argument("--submit", action="store_true", help="start a PipelineJob")
    run.add_argument("--wait", action="store_true", help="with --submit: follow it to its end")
    run.add_argument("--schedule", metavar="CRON", help="create a schedule for the pipeline")
    runner_flags.add_pipeline_flags(p)
    args = p.parse_args(argv)

    needed = ["pipeline_root", "data_root", "serving_base", "image"]
    if args.submit or args.schedule or args.trainer_on_vertex:
        needed += ["project", "region"]
    if args.beam_runner == "DataflowRunner":
        needed += ["project", "region"]
    missing = sorted({f"--{n.replace('_', '-')}" for n in needed if not getattr(args, n)})
    if missing:
        p.error(f"missing {', '.join(missing)} (or their environment variables, see --help)")
    if args.wait and not args.submit:
        p.error("--wait follows a submitted job: add --submit")
    try:
        args.labels = parse_labels(args.labels)
    except ValueError as err:
        p.error(str(err))
    return args


def parse_labels(text: str) -> dict[str, str]:
    labels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--labels: expected key=value,..., got {item!r}")
        labels[key] = value
    return labels


def make_job(args: argparse.Namespace, template: Path, job_id: str | None = None):
    """A PipelineJob of the compiled template, not yet submitted; job_id names it (Vertex
    makes one up without it)."""
    from google.cloud import aiplatform

    aiplatform.init(project=args.project, location=args.region)
    named = {"job_id": job_id} if job_id else {}
    return aiplatform.PipelineJob(
        display_name=configs.PIPELINE_NAME,
        template_path=str(template),
        pipeline_root=args.pipeline_root,
        enable_caching=not args.no_cache,
        labels=args.labels or None,
        project=args.project,
        location=args.region,
        **named,
    )


def job_name(args: argparse.Namespace, job_id: str) -> str:
    return f"projects/{args.project}/locations/{args.region}/pipelineJobs/{job_id}"


def running(args: argparse.Namespace) -> list:
    """This pipeline's jobs that are running now (a scheduled run, or another submission)."""
    from google.cloud import aiplatform

    found = aiplatform.PipelineJob.list(
        filter=f'display_name="{configs.PIPELINE_NAME}" AND state="{RUNNING}"',
        project=args.project,
        location=args.region,
    )
    return list(found)


def submit_once(
    args: argparse.Namespace, template: Path, job_id: str, say=print, poll_seconds: float = 20
):
    """The job called job_id, submitted exactly once: the one Vertex already has under
    that name (a worker resuming after a restart), else a new one, submitted once every
    other running job of the pipeline has ended. That job may have read the same spans
    (a scheduled run that started after they were written): then every task of the new
    one is a cache hit of it, and nothing trains twice."""
    from google.api_core import exceptions
    from google.cloud import aiplatform

    aiplatform.init(project=args.project, location=args.region)
    try:
        job = aiplatform.PipelineJob.get(job_name(args, job_id))
        say(f"following {job.resource_name}, submitted earlier")
        return job
    except exceptions.NotFound:
        pass
    for other in running(args):
        say(f"waiting for {other.resource_name} to end before submitting {job_id}")
        follow(other, say, poll_seconds)
    job = make_job(args, template, job_id)
    try:
        job.submit(service_account=args.service_account)
    except exceptions.AlreadyExists:  # submitted between the lookup and now
        return aiplatform.PipelineJob.get(job_name(args, job_id))
    say(f"submitted {job.resource_name}")
    return job


def follow(job, say=print, poll_seconds: float = 20):
    """Print a line per task as it ends, until the job ends; returns the finished job."""
    done: set[str] = set()
    while True:
        job = type(job).get(job.resource_name)
        for task in job.task_details:
            state = task.state.name
            if task.task_name in done or state not in (
                "SUCCEEDED",
                "SKIPPED",
                "FAILED",
                "CANCELLED",
            ):
                continue
            done.add(task.task_name)
            seconds = (task.end_time - task.start_time).total_seconds() if task.end_time else 0
            word = {"SUCCEEDED": "ran", "SKIPPED": "cached"}.get(state, state)
            say(run_report.component_line(task.task_name, word, seconds))
        if job.state.name in FINAL_STATES:
            return job
        time.sleep(poll_seconds)


@dataclasses.dataclass(frozen=True)
class JobEnd:
    """What a finished job did, from its end state and its tasks' output artifacts."""

    state: str
    error: str  # the job's error message; "" when it succeeded
    blessed: bool | None  # the Evaluator's verdict; None when it did not get that far
    pushed_version: str | None  # the version the Pusher published, if it published one
    pushed_destination: str | None


def _output_metadata(job, task_name: str, output: str) -> dict | None:
    for task in job.task_details:
        if task.task_name == task_name and output in task.outputs:
            artifacts = task.outputs[output].artifacts
            return dict(artifacts[0].metadata) if artifacts else None
    return None


def end_of(job) -> JobEnd:
    blessing = _output_metadata(job, "Evaluator", "blessing")
    pushed = _output_metadata(job, "AtomicPusher", "pushed_model") or {}
    published = pushed.get(names.PUSHED) == 1
    error = getattr(getattr(getattr(job, "gca_resource", None), "error", None), "message", "")
    return JobEnd(
        state=job.state.name,
        error=error or "",
        blessed=None if blessing is None else blessing.get("blessed") == 1,
        pushed_version=str(pushed[names.PUSHED_VERSION]) if published else None,
        pushed_destination=str(pushed.get(names.PUSHED_DESTINATION)) if published else None,
    )


def pushed(job) -> str:
    """What the finished job's Pusher did, in a sentence."""
    end = end_of(job)
    if end.pushed_version is not None:
        return f"pushed version {end.pushed_version} to {end.pushed_destination}"
    if _output_metadata(job, "AtomicPusher", "pushed_model") is not None:
        return "nothing pushed: the model was not blessed, or is the one already serving"
    return "nothing pushed: the job did not reach the Pusher"
