"""Compile the tagger pipeline for Vertex AI Pipelines, and optionally submit or schedule it.

    python vertex_runner.py compile  [flags]                 writes build/vertex/so-tagger.json
    python vertex_runner.py compile --submit [--wait]        ... and starts a PipelineJob
    python vertex_runner.py compile --schedule "0 3 * * 1"   ... and runs it on a schedule

The mirror of local_runner.py: the pipeline and its settings come from
pipeline/configs.py; this file holds only where things live on Google Cloud and how
they run there. Every location comes from a flag or its environment variable (below);
compiling needs no cloud access, because module code is imported from the pipeline
image (deploy/pipeline/Dockerfile) instead of being uploaded as a wheel.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from contract import metadata_names as names
from contract import paths, quiet, serving_layout
from pipeline import configs, run_report, runner_flags

# Where deploy/pipeline/Dockerfile puts the checkout inside the image (its WORKDIR).
IMAGE_CHECKOUT = "/pipeline"
DEFAULT_OUTPUT = paths.build_dir() / "vertex" / f"{configs.PIPELINE_NAME}.json"
CONSOLE_RUN_URL = (
    "https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/runs/{job}"
    "?project={project}"
)
FINAL_STATES = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["compile"], help="compile the PipelineJob JSON")
    where = p.add_argument_group("where things live (flag, or the environment variable named)")
    where.add_argument("--project", default=_env("TAGGER_GCP_PROJECT"), help="TAGGER_GCP_PROJECT")
    where.add_argument("--region", default=_env("TAGGER_GCP_REGION"), help="TAGGER_GCP_REGION")
    where.add_argument("--pipeline-root", default=_env("TAGGER_VERTEX_PIPELINE_ROOT"),
                       help="gs:// artifact prefix; TAGGER_VERTEX_PIPELINE_ROOT")  # fmt: skip
    where.add_argument("--data-root", default=_env("TAGGER_VERTEX_SPANS_DIR"),
                       help="gs:// prefix of span-N/ folders; TAGGER_VERTEX_SPANS_DIR")  # fmt: skip
    where.add_argument("--serving-base", default=_env("TAGGER_VERTEX_SERVING_BASE"),
                       help="gs:// TF Serving base path; the model goes to "
                       f"<base>/{serving_layout.MODEL_NAME}/<version>; "
                       "TAGGER_VERTEX_SERVING_BASE")  # fmt: skip
    where.add_argument("--image", default=_env("TAGGER_PIPELINE_IMAGE"),
                       help="pipeline image (deploy/pipeline/Dockerfile), by digest; "
                       "TAGGER_PIPELINE_IMAGE")  # fmt: skip
    where.add_argument("--service-account", default=_env("TAGGER_VERTEX_SERVICE_ACCOUNT"),
                       help="TAGGER_VERTEX_SERVICE_ACCOUNT")  # fmt: skip
    where.add_argument("--labels", default=_env("TAGGER_VERTEX_LABELS", ""),
                       help="k=v,... for the job and Dataflow; TAGGER_VERTEX_LABELS")  # fmt: skip
    where.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    beam = p.add_argument_group("Beam (StatisticsGen, Transform, Evaluator, ExampleGen)")
    beam.add_argument("--beam-runner", choices=["DataflowRunner", "DirectRunner"],
                      default=_env("TAGGER_BEAM_RUNNER", "DataflowRunner"))  # fmt: skip
    beam.add_argument("--dataflow-temp-location", default=_env("TAGGER_DATAFLOW_TEMP"),
                      help="gs:// prefix; default <pipeline root>/dataflow-tmp")  # fmt: skip
    beam.add_argument("--dataflow-region", default=_env("TAGGER_DATAFLOW_REGION"),
                      help="default: --region")  # fmt: skip
    beam.add_argument("--dataflow-machine-type",
                      default=_env("TAGGER_DATAFLOW_MACHINE_TYPE", "n1-standard-4"))  # fmt: skip
    beam.add_argument("--dataflow-max-workers", type=int,
                      default=int(_env("TAGGER_DATAFLOW_MAX_WORKERS", "4")))  # fmt: skip
    beam.add_argument("--direct-workers", type=int, default=2,
                      help="DirectRunner processes (0: in-process)")  # fmt: skip
    train = p.add_argument_group("the Trainer as a Vertex AI custom job")
    train.add_argument("--trainer-on-vertex", action="store_true")
    train.add_argument("--training-machine-type",
                       default=_env("TAGGER_TRAINING_MACHINE_TYPE", "n1-standard-8"))  # fmt: skip
    train.add_argument("--accelerator-type", default=_env("TAGGER_TRAINING_ACCELERATOR"),
                       help="e.g. NVIDIA_TESLA_T4; none by default")  # fmt: skip
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


def beam_args(args: argparse.Namespace) -> list[str]:
    if args.beam_runner == "DirectRunner":
        return ["--runner=DirectRunner", *runner_flags.direct_runner_args(args.direct_workers)]
    temp = args.dataflow_temp_location or f"{args.pipeline_root.rstrip('/')}/dataflow-tmp"
    flags = [
        "--runner=DataflowRunner",
        f"--project={args.project}",
        f"--region={args.dataflow_region or args.region}",
        f"--temp_location={temp}",
        f"--machine_type={args.dataflow_machine_type}",
        f"--max_num_workers={args.dataflow_max_workers}",
        # Workers run the pipeline image, so they import the same module code.
        f"--sdk_container_image={args.image}",
        "--experiments=use_runner_v2",
    ]
    if args.service_account:
        flags.append(f"--service_account_email={args.service_account}")
    flags += [f"--labels={k}={v}" for k, v in args.labels.items()]
    return flags


def vertex_training(args: argparse.Namespace) -> dict | None:
    if not args.trainer_on_vertex:
        return None
    machine = {"machine_type": args.training_machine_type}
    if args.accelerator_type:
        machine |= {"accelerator_type": args.accelerator_type,
                    "accelerator_count": args.accelerator_count}  # fmt: skip
    return {
        "project": args.project,
        "region": args.region,
        "worker_pool_specs": [
            {
                "machine_spec": machine,
                "replica_count": 1,
                "container_spec": {"image_uri": args.image},
            }
        ],
    }


def compile_pipeline(args: argparse.Namespace) -> Path:
    from tfx import v1 as tfx  # slow to import: after the arguments are checked

    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(
        **runner_flags.pipeline_settings(args),
        pipeline_root=args.pipeline_root,
        spans_dir=args.data_root,
        schema_path=f"{IMAGE_CHECKOUT}/{paths.SCHEMA_FILE}",
        hyperparameters_dir=f"{IMAGE_CHECKOUT}/{paths.HYPERPARAMETERS_DIRS[args.encoder]}",
        serving_model_dir=f"{args.serving_base.rstrip('/')}/{serving_layout.MODEL_NAME}",
        vertex_training=vertex_training(args),
        beam_pipeline_args=beam_args(args),
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=args.image),
        output_dir=str(args.output.parent),
        output_filename=args.output.name,
    )
    runner.run(pipeline, write_out=True)
    return args.output


def make_job(args: argparse.Namespace, template: Path):
    from google.cloud import aiplatform

    aiplatform.init(project=args.project, location=args.region)
    return aiplatform.PipelineJob(
        display_name=configs.PIPELINE_NAME,
        template_path=str(template),
        pipeline_root=args.pipeline_root,
        enable_caching=not args.no_cache,
        labels=args.labels or None,
        project=args.project,
        location=args.region,
    )


def follow(job, say=print, poll_seconds: float = 20):
    """Print a line per task as it ends, until the job ends; returns the finished job."""
    done: set[str] = set()
    while True:
        job = type(job).get(job.resource_name)
        for task in job.task_details:
            state = task.state.name
            if task.task_name in done or state not in ("SUCCEEDED", "SKIPPED", "FAILED",
                                                       "CANCELLED"):  # fmt: skip
                continue
            done.add(task.task_name)
            seconds = (task.end_time - task.start_time).total_seconds() if task.end_time else 0
            word = {"SUCCEEDED": "ran", "SKIPPED": "cached"}.get(state, state)
            say(run_report.component_line(task.task_name, word, seconds))
        if job.state.name in FINAL_STATES:
            return job
        time.sleep(poll_seconds)


def pushed(job) -> str:
    """What the finished job's Pusher did, from its output artifact's metadata."""
    for task in job.task_details:
        if task.task_name != "AtomicPusher" or "pushed_model" not in task.outputs:
            continue
        metadata = dict(task.outputs["pushed_model"].artifacts[0].metadata)
        if metadata.get(names.PUSHED) == 1:
            return f"pushed version {metadata.get(names.PUSHED_VERSION)} to " + str(
                metadata.get(names.PUSHED_DESTINATION)
            )
        return "nothing pushed: the model was not blessed, or is the one already serving"
    return "nothing pushed: the job did not reach the Pusher"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths.logs_dir().mkdir(parents=True, exist_ok=True)
    log = paths.logs_dir() / f"vertex-{time.strftime('%Y%m%d-%H%M%S')}.log"
    started = time.monotonic()
    try:
        with quiet.output_to(log):
            template = compile_pipeline(args)
    except Exception as err:  # the log has TFX's account; the terminal gets the reason
        print("\n".join(run_report.error_lines(err)), file=sys.stderr)
        print(f"(full log: {log})", file=sys.stderr)
        return 1
    print(f"compiled {template} in {time.monotonic() - started:.1f} s (log: {log})")
    if args.submit:
        job = make_job(args, template)
        job.submit(service_account=args.service_account)
        job_id = job.resource_name.rsplit("/", 1)[-1]
        print(f"submitted {job.resource_name}")
        print(CONSOLE_RUN_URL.format(region=args.region, job=job_id, project=args.project))
        if args.wait:
            final = follow(job)
            print(f"job {job_id} ended: {final.state.name}; {pushed(final)}")
            if final.state.name != "PIPELINE_STATE_SUCCEEDED":
                return 1
    if args.schedule:
        schedule = make_job(args, template).create_schedule(
            cron=args.schedule,
            display_name=f"{configs.PIPELINE_NAME}-schedule",
            service_account=args.service_account,
        )
        print(f"schedule {schedule.resource_name}: {args.schedule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
