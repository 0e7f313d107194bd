"""The learning worker: when enough accepted feedback has come in, retrain.

One batch at a time, each step recorded in the feedback store before the next starts:
1. claim: accepted, unclaimed samples get the batch's id (one transaction), no source
   more than its share of the batch (10 % by default; the rest waits for later batches);
2. span: the batch's samples are written as the next data span, through the data
   import's own writer, with the batch id in its manifest;
3. retrain: the pipeline runs on every span (base data plus feedback), locally with
   `local_runner.py`, or with --vertex as a Vertex AI PipelineJob over the spans in the
   data bucket (learning/retrain.py); the Evaluator decides and a blessed model is
   pushed where the model server polls;
4. outcome: blessed, not_blessed or failed, with the version now serving.
A worker killed anywhere resumes the unfinished batch when it starts again: a span
already written for the batch is found by its manifest, never written twice (and a
Vertex AI job already submitted for it is found by its name and followed), and the
batch's samples stay its own, so each sample ends up in exactly one span. Each batch is
leased to the worker that claimed it (by --worker-id), so a second worker leaves it
alone unless the lease has run out. A batch that is not blessed keeps its samples: the
worker does not retry the same data forever. A failed batch's span is withdrawn and its
samples are given back for a later batch, so one bad sample does not take the others
with it (store/retrain.py's MAX_ATTEMPTS bounds how often a sample is tried).

Only samples whose tags the worker's schema has are claimed, so only they go into a
span: a tag the pipeline does not know would stop every later run at the AnomaliesGate.
Before any of this, spans holding samples of a withdrawn source are replaced by spans
without them (ingest/withdraw.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import time
from pathlib import Path

from contract import paths
from ingest import seed_tsv, spans
from learning import span_store
from learning.retrain import LocalRetrain, VertexRetrain, retrain_name
from store import retrain as queue
from store.database import Database
from store.feedback import FeedbackStore
from store.retrain import RetrainQueue
from store.review import ReviewQueue
from store.vocabulary import known_tags

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Settings:
    every: int = 100  # retrain once this many accepted samples wait
    share: float = queue.SOURCE_SHARE  # of one batch, per source
    worker_id: str = dataclasses.field(default_factory=socket.gethostname)
    lease_s: float = 3 * 3600.0  # longer than a retrain takes; a dead worker's batch waits
    spans_dir: Path = dataclasses.field(default_factory=paths.spans_dir)
    metadata: Path = dataclasses.field(default_factory=paths.metadata_path)
    runner_args: tuple[str, ...] = ()  # passed on to local_runner.py (vertex_runner.py)
    # Start each retrain from the served model's weights: the Trainer then needs a few
    # epochs instead of a full training, at the same quality (docs/learning.md).
    warm_start: bool = True


def span_of_batch(location: Path | str, batch: int) -> dict | None:
    """The manifest of the span already written for this batch, if any."""
    return _written_for(span_store.at(location), batch)


def _written_for(store: span_store.LocalSpans | span_store.BucketSpans, batch: int) -> dict | None:
    return next((m for m in store.manifests() if m.get(spans.FEEDBACK_BATCH) == batch), None)


class Worker:
    """retrain: how the pipeline runs (learning/retrain.py); by default the local runner
    on settings.spans_dir. The spans live where that runner reads them."""

    def __init__(
        self,
        db: Database,
        known: frozenset[str],
        settings: Settings,
        retrain: LocalRetrain | VertexRetrain | None = None,
    ) -> None:
        self.queue, self.feedback = RetrainQueue(db, known), FeedbackStore(db, known)
        self.settings = settings
        self.retrain = retrain or LocalRetrain(
            settings.spans_dir, settings.metadata, settings.runner_args, settings.warm_start
        )
        self.spans = span_store.at(self.retrain.spans_location)

    def step(self) -> dict | None:
        """Finish an unfinished batch, or start one if enough samples wait; else None."""
        self.rewrite_withdrawn()
        settings = self.settings
        batch = self.queue.take_unfinished(settings.worker_id, settings.lease_s)
        if batch is not None:
            return self.finish(batch)
        if self.queue.claimable(settings.every, settings.share) < settings.every:
            return None
        claimed = self.queue.claim(
            settings.every, settings.share, settings.worker_id, settings.lease_s
        )
        if claimed is None:  # another worker took them first
            return None
        batch, samples = claimed
        log.info("batch %d claimed %d samples", batch, len(samples))
        return self.finish(batch)

    def finish(self, batch: int) -> dict:
        manifest = _written_for(self.spans, batch) or self.write_span(batch)
        self.queue.record_span(batch, manifest["span"], manifest["sha256"])
        outcome, version, detail = self.retrain.run(retrain_name(batch, manifest))
        if outcome == queue.FAILED:
            # Whatever broke, this span must not block every later run: take it out, and
            # give its samples back for a later batch.
            self.spans.withdraw(manifest["span"], f"batch {batch}: {detail}")
            self.queue.give_back(batch, manifest[spans.SAMPLE_IDS])
        self.queue.record_outcome(batch, outcome, version, detail)
        log.info("batch %d: span %d, %s (%s)", batch, manifest["span"], outcome, detail)
        return {"batch": batch, "span": manifest["span"], "outcome": outcome, "version": version}

    def write_span(self, batch: int, replaces: int | None = None) -> dict:
        # The batch holds only samples whose tags the worker's schema has: the store
        # claims no others (RetrainQueue._eligible), so nothing here stops the gate.
        trainable = self.queue.samples(batch)
        rows = [seed_tsv.Row(s.title, s.actual) for s in trainable]
        extra = {
            spans.SOURCE: spans.FEEDBACK_SOURCE,
            spans.FEEDBACK_BATCH: batch,
            spans.SAMPLE_IDS: [s.id for s in trainable],
        }
        if replaces is not None:
            extra[spans.REPLACES] = replaces
        return self.spans.write(map(spans.to_example_bytes, rows), extra)

    def rewrite_withdrawn(self) -> None:
        """Replace each written span that holds samples of a withdrawn source by one
        without them; the next run trains on the replacement."""
        for batch, withdrawn_ids in self.feedback.withdrawn_in_batches().items():
            manifest = _written_for(self.spans, batch)
            if manifest is None or not withdrawn_ids & set(manifest[spans.SAMPLE_IDS]):
                continue
            old = manifest["span"]
            reason = f"batch {batch}: {len(withdrawn_ids)} samples of withdrawn sources"
            self.spans.withdraw(old, reason)
            if self.queue.samples(batch):
                new = self.write_span(batch, replaces=old)
                self.queue.record_span(batch, new["span"], new["sha256"])
                log.info("span %d replaced by span %d without withdrawn samples", old, new["span"])
            else:
                log.info("span %d withdrawn: every sample in it was withdrawn", old)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m learning", description=__doc__.split("\n")[0])
    p.add_argument(
        "--feedback",
        default=paths.feedback_url(),
        help="sqlite:///path or postgresql://... (TAGGER_FEEDBACK_URL)",
    )
    p.add_argument(
        "--every",
        type=int,
        default=Settings.every,
        help="retrain when this many accepted samples wait",
    )
    p.add_argument(
        "--source-share",
        type=float,
        default=Settings.share,
        help="the most of one batch that one source may hold (0-1)",
    )
    p.add_argument(
        "--worker-id",
        default=socket.gethostname(),
        help="this worker's name, which its batches are leased to",
    )
    p.add_argument("--poll-seconds", type=float, default=5.0)
    p.add_argument("--spans-dir", type=Path, default=paths.spans_dir())
    p.add_argument("--metadata", type=Path, default=paths.metadata_path())
    p.add_argument("--once", action="store_true", help="one step, then exit")
    p.add_argument(
        "--cold-start",
        action="store_true",
        help="train each model from scratch instead of from the served one",
    )
    p.add_argument(
        "--vertex",
        action="store_true",
        help="retrain as a Vertex AI PipelineJob over the spans in the data bucket; "
        "the arguments after -- are then vertex_runner.py's",
    )
    p.add_argument(
        "--job-poll-seconds",
        type=float,
        default=20.0,
        help="with --vertex: how often the running job is looked at",
    )
    p.add_argument(
        "runner_args", nargs="*", help="after --: arguments for local_runner.py (vertex_runner.py)"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    db, known = Database(args.feedback), known_tags(paths.schema_path())
    ReviewQueue(db, known).release_known()  # tags a reviewed schema change has added
    settings = Settings(
        every=args.every,
        share=args.source_share,
        worker_id=args.worker_id,
        spans_dir=args.spans_dir,
        metadata=args.metadata,
        runner_args=tuple(args.runner_args),
        warm_start=not args.cold_start,
    )
    retrain = None
    if args.vertex:
        retrain = VertexRetrain(
            settings.runner_args, settings.warm_start, poll_seconds=args.job_poll_seconds
        )
    worker = Worker(db, known, settings, retrain)
    where = "on Vertex AI" if args.vertex else "locally"
    print(
        f"learning worker: retrains {where} every {args.every} accepted samples, spans in "
        f"{worker.spans.location}",
        flush=True,
    )
    while True:
        done = worker.step()
        if done is not None:
            print(json.dumps(done), flush=True)
        if args.once:
            return 0
        if done is None:
            time.sleep(args.poll_seconds)
