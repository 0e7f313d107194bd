"""The drift monitor on Vertex AI Pipelines: a one-task pipeline that runs `python -m
monitoring` in the pipeline image on the buckets, compiled here and scheduled there.

    python -m monitoring.vertex --image IMAGE --logs gs://... --out gs://... \\
        --spans gs://... --model-base-path gs://... --output monitor.json
    ... --project P --region R --pipeline-root gs://... --service-account SA \\
        --schedule "*/10 * * * *"

Each run is recorded by Vertex ML Metadata (the task's execution, with its arguments);
the window records go to --out, where the app and the rollout controller read them.
Caching is off: the same arguments must run again on the next window.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contract.quiet import quiet_imports

NAME = "so-tagger-drift-monitor"


def monitor_args(args: argparse.Namespace) -> list[str]:
    return [
        f"--logs={args.logs}",
        f"--window-seconds={args.window_seconds}",
        f"--out={args.out}",
        f"--model-base-path={args.model_base_path}",
        f"--spans={args.spans}",
        "--metadata=",
    ]


def compile_pipeline(args: argparse.Namespace) -> Path:
    from kfp import compiler, dsl

    image, arguments = args.image, monitor_args(args)

    @dsl.container_component
    def drift_monitor():
        return dsl.ContainerSpec(
            image=image, command=["python", "-m", "monitoring"], args=arguments
        )

    @dsl.pipeline(name=NAME, description="Request-log windows against the training spans")
    def monitor_pipeline():
        drift_monitor().set_caching_options(False)

    compiler.Compiler().compile(monitor_pipeline, str(args.output))
    return args.output


def schedule(args: argparse.Namespace, template: Path):
    from google.cloud import aiplatform

    aiplatform.init(project=args.project, location=args.region)
    job = aiplatform.PipelineJob(
        display_name=NAME,
        template_path=str(template),
        pipeline_root=args.pipeline_root,
        enable_caching=False,
        project=args.project,
        location=args.region,
    )
    return job.create_schedule(
        cron=args.schedule, display_name=f"{NAME}-schedule", service_account=args.service_account
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m monitoring.vertex", description=__doc__)
    p.add_argument("--image", required=True, help="the pipeline image, by digest")
    p.add_argument("--logs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--spans", required=True)
    p.add_argument("--model-base-path", required=True)
    p.add_argument("--window-seconds", type=int, default=600)
    p.add_argument("--output", type=Path, default=Path("monitor.json"))
    p.add_argument("--schedule", metavar="CRON", help="create a Vertex schedule")
    p.add_argument("--project")
    p.add_argument("--region")
    p.add_argument("--pipeline-root")
    p.add_argument("--service-account")
    args = p.parse_args(argv)
    missing = [
        f
        for f in ("project", "region", "pipeline_root", "service_account")
        if args.schedule and not getattr(args, f)
    ]
    if missing:
        p.error("--schedule needs " + ", ".join("--" + m.replace("_", "-") for m in missing))
    with quiet_imports():
        template = compile_pipeline(args)
    print(f"compiled {template}")
    if args.schedule:
        made = schedule(args, template)
        print(f"schedule {made.resource_name}: {args.schedule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
