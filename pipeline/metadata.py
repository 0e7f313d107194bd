"""Read-only queries on ML Metadata: what the last run did, and where a pushed model came from."""

from __future__ import annotations

import dataclasses
import json

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from contract import metadata_names as names

Execution = metadata_store_pb2.Execution
Event = metadata_store_pb2.Event

STATE_NAMES = {
    Execution.COMPLETE: "ran",
    Execution.CACHED: "cached",
    Execution.FAILED: "FAILED",
    Execution.RUNNING: "running",
    Execution.CANCELED: "canceled",
}


def sqlite_store(path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def value(properties, name: str):
    """A custom property's value (str, int or float), or None."""
    if name not in properties:
        return None
    v = properties[name]
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@dataclasses.dataclass
class NodeRun:
    node: str
    state: str
    started_ms: int  # ML Metadata times: milliseconds since the epoch
    finished_ms: int

    @property
    def seconds(self) -> float:
        return (self.finished_ms - self.started_ms) / 1000


def node_name(store: metadata_store.MetadataStore, execution: Execution) -> str:
    for context in store.get_contexts_by_execution(execution.id):
        if context.type == "node":
            return context.name.split(".", 1)[-1]  # "<pipeline>.<node id>"
    return execution.type


def latest_run(store: metadata_store.MetadataStore) -> tuple[str, list[NodeRun]]:
    """The most recent pipeline run: its id and, per component, its state and wall time
    (from the execution's creation to its last update, as ML Metadata recorded them)."""
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise LookupError("no pipeline run recorded in ML Metadata")
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    nodes = [
        NodeRun(
            node=node_name(store, e),
            state=STATE_NAMES.get(e.last_known_state, str(e.last_known_state)),
            started_ms=e.create_time_since_epoch,
            finished_ms=e.last_update_time_since_epoch,
        )
        for e in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
    ]
    return run.name, nodes


def this_run(store: metadata_store.MetadataStore, since_ms: int):
    """The pipeline_run context started at or after since_ms, or None."""
    runs = [
        c
        for c in store.get_contexts_by_type("pipeline_run")
        if c.create_time_since_epoch >= since_ms
    ]
    return max(runs, key=lambda c: c.id) if runs else None


def failed_nodes(store: metadata_store.MetadataStore, run) -> list[str]:
    """The components of this run that failed, in the order they ran."""
    executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
    return [node_name(store, e) for e in executions if e.last_known_state == Execution.FAILED]


def pushed_model(store: metadata_store.MetadataStore, run):
    """The PushedModel artifact this run's Pusher wrote, or None."""
    found = [a for a in store.get_artifacts_by_context(run.id) if a.type == names.PUSHED_MODEL]
    return found[0] if found else None


def blessing_of(store: metadata_store.MetadataStore, pushed):
    """The Evaluator's verdict the Pusher acted on. (The run's context also holds the
    resolver's older blessing, the baseline's, so "a ModelBlessing of this run" is not it.)"""
    pusher = producer(store, pushed.id)
    return artifacts_of(store, pusher.id, Event.INPUT)["model_blessing"][0]


def evaluation_of(store: metadata_store.MetadataStore, blessing):
    """The Evaluator's evaluation artifact beside this blessing."""
    evaluator = producer(store, blessing.id)
    return artifacts_of(store, evaluator.id, Event.OUTPUT)["evaluation"][0]


def is_blessed(blessing) -> bool:
    return value(blessing.custom_properties, names.BLESSED) == 1


# --- lineage ------------------------------------------------------------------------------


def _event_key(event: Event) -> str:
    return next((s.key for s in event.path.steps if s.HasField("key")), "")


def producer(store: metadata_store.MetadataStore, artifact_id: int) -> Execution:
    events = store.get_events_by_artifact_ids([artifact_id])
    outputs = [e for e in events if e.type in (Event.OUTPUT, Event.DECLARED_OUTPUT)]
    if not outputs:
        raise LookupError(f"artifact {artifact_id} has no producing execution")
    return store.get_executions_by_id([outputs[0].execution_id])[0]


def consumers(store: metadata_store.MetadataStore, artifact_id: int, key: str) -> list:
    """The executions that read the artifact as their input `key`, oldest first."""
    events = store.get_events_by_artifact_ids([artifact_id])
    ids = [e.execution_id for e in events if e.type == Event.INPUT and _event_key(e) == key]
    return sorted(store.get_executions_by_id(ids), key=lambda e: e.id)


def artifacts_of(store: metadata_store.MetadataStore, execution_id: int, kind: int) -> dict:
    """An execution's input (kind=Event.INPUT) or output artifacts, by channel key."""
    events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type == kind]
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    found: dict[str, list] = {}
    for e in events:
        found.setdefault(_event_key(e), []).append(by_id[e.artifact_id])
    return found


def latest_pushed_model(store: metadata_store.MetadataStore):
    pushed = [
        a
        for a in store.get_artifacts_by_type(names.PUSHED_MODEL)
        if value(a.custom_properties, names.PUSHED) == 1
    ]
    if not pushed:
        raise LookupError("no model has been pushed yet")
    return max(pushed, key=lambda a: (a.create_time_since_epoch, a.id))


def lineage(store: metadata_store.MetadataStore, pushed=None) -> dict:
    """Where a pushed model (default: the latest) came from, as a plain dict."""
    pushed = pushed or latest_pushed_model(store)
    pusher = producer(store, pushed.id)
    pusher_in = artifacts_of(store, pusher.id, Event.INPUT)
    model = pusher_in["model"][0]
    blessing = pusher_in["model_blessing"][0]
    trainer = producer(store, model.id)
    trainer_in = artifacts_of(store, trainer.id, Event.INPUT)
    transform_graph = trainer_in["transform_graph"][0]
    transform = producer(store, transform_graph.id)
    transform_in = artifacts_of(store, transform.id, Event.INPUT)
    schema = transform_in["schema"][0]
    examples = transform_in["examples"][0]
    evaluation = evaluation_of(store, blessing)
    return {
        "pushed_model": {
            "version": value(pushed.custom_properties, names.PUSHED_VERSION),
            "destination": value(pushed.custom_properties, names.PUSHED_DESTINATION),
            "uri": pushed.uri,
        },
        "trainer_run": {"execution_id": trainer.id, "model_uri": model.uri},
        "transform_graph": {"execution_id": transform.id, "uri": transform_graph.uri},
        "schema": {"uri": schema.uri, "producer": node_name(store, producer(store, schema.id))},
        # One Examples artifact holds every span the run read (SpanExampleGen).
        "examples_uri": examples.uri,
        "data_spans": json.loads(value(examples.custom_properties, names.SPANS) or "[]"),
        "evaluation": {
            "blessed": is_blessed(blessing),
            "uri": evaluation.uri,
        },
    }
