"""Compile the tagger pipeline for Vertex AI Pipelines, and optionally submit or schedule it.

    python vertex_runner.py compile  [flags]                 writes build/vertex/so-tagger.json
    python vertex_runner.py compile --submit [--wait]        ... and starts a PipelineJob
    python vertex_runner.py compile --schedule "0 3 * * 1"   ... and runs it on a schedule

The mirror of local_runner.py: the pipeline and its settings come from
pipeline/configs.py; this file holds only where things live on Google Cloud and how
they run there. Every location comes from a flag or its environment variable (the
flags, and submitting and following a job, are pipeline/vertex_jobs.py's, which the
learning worker shares); compiling needs no cloud access, because module code is
imported from the pipeline image (deploy/pipeline/Dockerfile) instead of being uploaded
as a wheel.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from contract import paths, quiet, serving_layout
from pipeline import configs, run_report, runner_flags, vertex_jobs

# Where deploy/pipeline/Dockerfile puts the checkout inside the image (its WORKDIR).
IMAGE_CHECKOUT = "/pipeline"


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
        machine |= {
            "accelerator_type": args.accelerator_type,
            "accelerator_count": args.accelerator_count,
        }
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


def main(argv: list[str] | None = None) -> int:
    args = vertex_jobs.parse_args(argv, __doc__.split("\n")[0])
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
        job = vertex_jobs.make_job(args, template)
        job.submit(service_account=args.service_account)
        job_id = job.resource_name.rsplit("/", 1)[-1]
        print(f"submitted {job.resource_name}")
        url = vertex_jobs.CONSOLE_RUN_URL
        print(url.format(region=args.region, job=job_id, project=args.project))
        if args.wait:
            final = vertex_jobs.follow(job)
            print(f"job {job_id} ended: {final.state.name}; {vertex_jobs.pushed(final)}")
            if final.state.name != vertex_jobs.SUCCEEDED:
                return 1
    if args.schedule:
        schedule = vertex_jobs.make_job(args, template).create_schedule(
            cron=args.schedule,
            display_name=f"{configs.PIPELINE_NAME}-schedule",
            service_account=args.service_account,
        )
        print(f"schedule {schedule.resource_name}: {args.schedule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
