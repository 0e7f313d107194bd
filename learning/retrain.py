"""How the learning worker retrains on every span, and reads back what came of it.

Two ways, one outcome record (store/retrain.py: blessed, not_blessed or failed, with the
version now serving and a line saying why). Each retrain has a name, made from its batch
and the content hash of its span (`retrain_name`):
- LocalRetrain starts `local_runner.py` as a user starts it and reads what the run did
  from the local ML Metadata store;
- VertexRetrain submits the compiled pipeline to Vertex AI Pipelines through the code
  `vertex_runner.py --submit` uses (pipeline/vertex_jobs.py), follows the job, and reads
  the outcome from the job's end state and the quality file the Pusher publishes beside
  each version; nothing local. Its job carries the retrain's name, so a worker that
  restarts while the job runs finds it and follows it instead of submitting another.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from contract import metadata_names as names
from contract import paths, serving_layout
from pipeline import configs, metadata, vertex_jobs
from store import objects
from store import retrain as outcomes

log = logging.getLogger(__name__)
Outcome = tuple[str, str | None, str]  # (outcome, version serving, detail)


def retrain_name(batch: int, manifest: dict) -> str:
    """One name per span written for a batch: the same after a restart, a new one when
    the batch's span is rewritten (its content hash changes)."""
    return (
        f"{configs.PIPELINE_NAME}-batch-{batch}-span-{manifest['span']}-{manifest['sha256'][:12]}"
    )


def _last_line(run: subprocess.CompletedProcess) -> str:
    lines = run.stdout.strip().splitlines() or run.stderr.strip().splitlines()
    return lines[-1].strip() if lines else f"exit {run.returncode}"


class LocalRetrain:
    """local_runner.py on every span of a local directory."""

    def __init__(
        self, spans_dir: Path, metadata_path: Path, runner_args: tuple[str, ...], warm_start: bool
    ) -> None:
        self.spans_dir, self.metadata_path = spans_dir, metadata_path
        self.argv = [*runner_args, *(["--warm-start"] if warm_start else [])]

    @property
    def spans_location(self) -> str:
        return str(self.spans_dir)

    def run(self, name: str) -> Outcome:
        """The runner is started, never imported: what it did is read from ML Metadata."""
        started_ms = int(time.time() * 1000)
        argv = [
            sys.executable,
            str(paths.CHECKOUT / "local_runner.py"),
            "--spans-dir",
            str(self.spans_dir),
            "--metadata",
            str(self.metadata_path),
            *self.argv,
        ]
        run = subprocess.run(argv, capture_output=True, text=True)
        log.info("%s: pipeline run exited %d:\n%s%s", name, run.returncode, run.stdout, run.stderr)
        # The runner's last line says what it pushed, or where and why it stopped.
        summary = _last_line(run)
        if run.returncode != 0:
            return outcomes.FAILED, None, summary
        store = metadata.sqlite_store(str(self.metadata_path))
        pushed = metadata.pushed_model(store, metadata.this_run(store, started_ms))
        version = metadata.value(pushed.custom_properties, names.PUSHED_VERSION)
        blessed = metadata.is_blessed(metadata.blessing_of(store, pushed))
        return (outcomes.BLESSED if blessed else outcomes.NOT_BLESSED), version, summary


class VertexRetrain:
    """The compiled pipeline as a Vertex AI PipelineJob, over the spans in the bucket.

    runner_args: vertex_runner.py's flags (after `compile`); the locations may come from
    their environment variables instead. template: a job compiled already; without one
    the worker compiles it, as a user would, the first time it needs it.
    """

    def __init__(
        self,
        runner_args: tuple[str, ...],
        warm_start: bool,
        template: Path | None = None,
        poll_seconds: float = 20.0,
    ) -> None:
        self.argv = ["compile", *runner_args, *(["--warm-start"] if warm_start else [])]
        self.args = vertex_jobs.parse_args(self.argv)
        self.template, self.poll_seconds = template, poll_seconds

    @property
    def spans_location(self) -> str:
        return self.args.data_root

    def compiled(self) -> Path:
        if self.template is None:
            out = Path(tempfile.mkdtemp(prefix="so-tagger-job-")) / "so-tagger.json"
            argv = [
                sys.executable,
                str(paths.CHECKOUT / "vertex_runner.py"),
                *self.argv,
                "--output",
                str(out),
            ]
            run = subprocess.run(argv, capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"compiling the pipeline failed: {_last_line(run)}")
            self.template = out
        return self.template

    def run(self, name: str) -> Outcome:
        """The job is named `name`. Errors talking to Vertex AI while the job runs are
        not its outcome: they end the worker, whose restart follows the same job again."""
        job_id = name
        try:
            template = self.compiled()
        except RuntimeError as err:
            return outcomes.FAILED, None, str(err)
        job = vertex_jobs.submit_once(self.args, template, job_id, log.info, self.poll_seconds)
        end = vertex_jobs.end_of(vertex_jobs.follow(job, log.info, self.poll_seconds))
        if end.state != vertex_jobs.SUCCEEDED:
            return outcomes.FAILED, None, f"job {job_id} ended {end.state}: {end.error}"
        if not end.blessed:
            return outcomes.NOT_BLESSED, None, f"job {job_id}: the Evaluator did not bless it"
        if end.pushed_version is None:
            return outcomes.BLESSED, None, f"job {job_id}: blessed; nothing new to push"
        return outcomes.BLESSED, end.pushed_version, self.quality(job_id, end.pushed_version)

    def quality(self, job_id: str, version: str) -> str:
        """The detail line of a pushed version: its metrics from the published quality
        file, which the Pusher writes before the version itself appears."""
        base = objects.join(self.args.serving_base, serving_layout.MODEL_NAME)
        text = objects.read(serving_layout.quality_path(base, version))
        if text is None:
            return f"job {job_id}: pushed version {version}; no quality file beside it"
        metrics, _ = serving_layout.read_quality_record(text)
        shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in sorted(metrics) if "micro" in k)
        return f"job {job_id}: pushed version {version} ({shown})"
