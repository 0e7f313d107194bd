"""The learning worker: when enough accepted feedback has come in, retrain.

One batch at a time, each step recorded in the feedback store before the next starts:
1. claim: every accepted, unclaimed sample gets the batch's id (one transaction);
2. span: the batch's samples are written as the next data span, through the data
   import's own writer, with the batch id in its manifest;
3. retrain: `local_runner.py` runs on every span (base data plus feedback); the
   Evaluator decides and a blessed model is pushed where the model server polls;
4. outcome: blessed, not_blessed or failed, with the version now serving.
A worker killed anywhere resumes the unfinished batch when it starts again: a span
already written for the batch is found by its manifest, never written twice, and the
batch's samples stay its own, so each sample ends up in exactly one span. A batch that
is not blessed keeps its samples: the worker does not retry the same data forever.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from contract import metadata_names as names
from contract import paths
from ingest import seed_tsv, spans
from ingest.withdraw import withdraw
from pipeline import metadata
from serving.feedback import store as store_module
from serving.feedback.store import FeedbackStore, known_tags

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Settings:
    every: int = 100  # retrain once this many accepted samples wait
    spans_dir: Path = dataclasses.field(default_factory=paths.spans_dir)
    metadata: Path = dataclasses.field(default_factory=paths.metadata_path)
    runner_args: tuple[str, ...] = ()  # passed on to local_runner.py
    # Start each retrain from the served model's weights: the Trainer then needs a few
    # epochs instead of a full training, at the same quality (README: Continuous learning).
    warm_start: bool = True


def span_of_batch(spans_dir: Path, batch: int) -> dict | None:
    """The manifest of the span already written for this batch, if any."""
    for number in spans.existing_spans(spans_dir):
        manifest = spans.read_manifest(spans_dir, number)
        if manifest.get(spans.FEEDBACK_BATCH) == batch:
            return manifest
    return None


class Worker:
    def __init__(self, store: FeedbackStore, settings: Settings) -> None:
        self.store, self.settings = store, settings

    def step(self) -> dict | None:
        """Finish an unfinished batch, or start one if enough samples wait; else None."""
        unfinished = self.store.unfinished_batches()
        if unfinished:
            return self.finish(unfinished[0]["id"])
        if self.store.claimable() < self.settings.every:
            return None
        batch, samples = self.store.claim()
        log.info("batch %d claimed %d samples", batch, len(samples))
        return self.finish(batch)

    def finish(self, batch: int) -> dict:
        manifest = span_of_batch(self.settings.spans_dir, batch) or self.write_span(batch)
        self.store.record_span(batch, manifest["span"], manifest["sha256"])
        outcome, version, detail = self.retrain()
        if outcome == store_module.FAILED:
            # Whatever broke, this span must not block every later run: take it out.
            withdraw(self.settings.spans_dir, manifest["span"], f"batch {batch}: {detail}")
        self.store.record_outcome(batch, outcome, version, detail)
        log.info("batch %d: span %d, %s (%s)", batch, manifest["span"], outcome, detail)
        return {"batch": batch, "span": manifest["span"], "outcome": outcome, "version": version}

    def write_span(self, batch: int) -> dict:
        samples = self.store.samples(batch)
        rows = [seed_tsv.Row(s.title, s.actual) for s in samples]
        number = spans.next_span(self.settings.spans_dir)
        manifest, _ = spans.write_span(
            self.settings.spans_dir, number, map(spans.to_example_bytes, rows),
            {spans.SOURCE: "feedback", spans.FEEDBACK_BATCH: batch,
             spans.SAMPLE_IDS: [s.id for s in samples]},
        )  # fmt: skip
        return manifest

    def retrain(self) -> tuple[str, str | None, str]:
        """Run the local runner on every span; (outcome, version serving, the runner's
        last line). The runner is started as a user starts it, never imported: what it
        did is read from ML Metadata afterwards."""
        started_ms = int(time.time() * 1000)
        argv = [sys.executable, str(paths.CHECKOUT / "local_runner.py"),
                "--spans-dir", str(self.settings.spans_dir),
                "--metadata", str(self.settings.metadata), *self.settings.runner_args]  # fmt: skip
        if self.settings.warm_start:
            argv.append("--warm-start")
        run = subprocess.run(argv, capture_output=True, text=True)
        log.info("pipeline run exited %d:\n%s%s", run.returncode, run.stdout, run.stderr)
        # The runner's last line says what it pushed, or where and why it stopped.
        lines = run.stdout.strip().splitlines() or run.stderr.strip().splitlines()
        summary = lines[-1].strip() if lines else f"exit {run.returncode}"
        if run.returncode != 0:
            return store_module.FAILED, None, summary
        store = metadata.sqlite_store(str(self.settings.metadata))
        pushed = metadata.pushed_model(store, metadata.this_run(store, started_ms))
        version = metadata.value(pushed.custom_properties, names.PUSHED_VERSION)
        blessed = metadata.is_blessed(metadata.blessing_of(store, pushed))
        outcome = store_module.BLESSED if blessed else store_module.NOT_BLESSED
        return outcome, version, summary


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m learning", description=__doc__.split("\n")[0])
    p.add_argument("--feedback", default=paths.feedback_url(),
                   help="sqlite:///path or postgresql://... (TAGGER_FEEDBACK_URL)")  # fmt: skip
    p.add_argument("--every", type=int, default=Settings.every,
                   help="retrain when this many accepted samples wait")  # fmt: skip
    p.add_argument("--poll-seconds", type=float, default=5.0)
    p.add_argument("--spans-dir", type=Path, default=paths.spans_dir())
    p.add_argument("--metadata", type=Path, default=paths.metadata_path())
    p.add_argument("--once", action="store_true", help="one step, then exit")
    p.add_argument("--cold-start", action="store_true",
                   help="train each model from scratch instead of from the served one")  # fmt: skip
    p.add_argument("runner_args", nargs="*", help="after --: arguments for local_runner.py")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = FeedbackStore(args.feedback, known_tags(paths.schema_path()))
    worker = Worker(store, Settings(args.every, args.spans_dir, args.metadata,
                                    tuple(args.runner_args), not args.cold_start))  # fmt: skip
    print(f"learning worker: retrains every {args.every} accepted samples", flush=True)
    while True:
        done = worker.step()
        if done is not None:
            print(json.dumps(done), flush=True)
        if args.once:
            return 0
        if done is None:
            time.sleep(args.poll_seconds)
