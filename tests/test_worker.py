"""The learning worker's span bookkeeping, without a pipeline run: spans rewritten when a
source is withdrawn, and samples the schema cannot take given back, never written."""

from __future__ import annotations

import dataclasses

from contract import paths
from ingest import spans
from learning.worker import Settings, Worker, span_of_batch
from serving.feedback.normalize import parse_feedback
from serving.feedback.store import FeedbackStore, known_tags

KNOWN = known_tags(paths.schema_path())


def sent_by(source: str, title: str, tags=("python",)):
    return dataclasses.replace(parse_feedback({"title": title, "actual": list(tags)}),
                               source=source)  # fmt: skip


def worker_on(tmp_path, known=KNOWN) -> tuple[Worker, FeedbackStore]:
    store = FeedbackStore(f"sqlite:///{tmp_path / 'f.db'}", known)
    settings = Settings(every=1, share=1.0, spans_dir=tmp_path / "spans",
                        metadata=tmp_path / "m.sqlite")  # fmt: skip
    return Worker(store, settings), store


def test_a_withdrawn_source_is_taken_out_of_spans_already_written(tmp_path):
    worker, store = worker_on(tmp_path)
    good = [store.add(sent_by("good", f"a fine question {i}")).id for i in range(3)]
    bad = [store.add(sent_by("bad", f"spam {i}")).id for i in range(2)]
    batch, _ = store.claim()
    first = worker.write_span(batch)
    store.record_span(batch, first["span"], first["sha256"])
    assert sorted(first[spans.SAMPLE_IDS]) == sorted(good + bad)
    store.withdraw_source("bad", "spam", by="op")
    worker.rewrite_withdrawn()
    assert first["span"] in spans.existing_spans(tmp_path / "spans" / spans.WITHDRAWN_DIR)
    now = span_of_batch(tmp_path / "spans", batch)
    assert now["span"] != first["span"] and now[spans.REPLACES] == first["span"]
    assert sorted(now[spans.SAMPLE_IDS]) == sorted(good) and now["examples"] == 3
    assert store.batches()[0]["span"] == now["span"]
    worker.rewrite_withdrawn()  # nothing left to do: the span stays
    assert span_of_batch(tmp_path / "spans", batch)["span"] == now["span"]
    store.close()


def test_samples_with_tags_the_pipelines_schema_lacks_wait_and_are_never_written(tmp_path):
    # The app's schema knows "rust" (a reviewed change shipped to it first); the
    # pipeline's does not yet. The worker must not write a span the gate would refuse.
    app_store = FeedbackStore(f"sqlite:///{tmp_path / 'f.db'}", KNOWN | {"rust"})
    kept = app_store.add(sent_by("a", "list comprehension")).id
    held = app_store.add(sent_by("b", "borrow checker", ("rust",))).id
    app_store.close()
    worker, store = worker_on(tmp_path)
    assert store.claimable() == 1
    batch, _ = store.claim()
    manifest = worker.write_span(batch)
    assert manifest[spans.SAMPLE_IDS] == [kept] and manifest["examples"] == 1
    with store.transaction() as t:
        row = t.run("SELECT batch_id, attempts FROM feedback WHERE id = ?", (held,)).fetchone()
    assert row == (None, 0)  # waits, untried, for the pipeline's schema to have the tag
    store.close()
    _, newer = worker_on(tmp_path, KNOWN | {"rust"})
    assert [s.id for s in newer.claim()[1]] == [held]
    newer.close()
