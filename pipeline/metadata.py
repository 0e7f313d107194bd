"""Read-only queries on ML Metadata: what a run did, and where a pushed model came from."""

from __future__ import annotations

import dataclasses

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: "ran",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "FAILED",
    metadata_store_pb2.Execution.RUNNING: "running",
    metadata_store_pb2.Execution.CANCELED: "canceled",
}


def sqlite_store(path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


@dataclasses.dataclass
class NodeRun:
    node: str
    state: str
    seconds: float


def node_id(execution: metadata_store_pb2.Execution) -> str:
    # TFX names executions after the node id, e.g. "tagger.Trainer" or type "Trainer".
    return execution.properties.get("component_id", metadata_store_pb2.Value()).string_value or (
        execution.custom_properties.get("node_id", metadata_store_pb2.Value()).string_value
    )


def latest_run(store: metadata_store.MetadataStore, pipeline_name: str) -> tuple[str, list[NodeRun]]:
    """The most recent pipeline run: its id and, per component, its state and wall time."""
    runs = [
        c
        for c in store.get_contexts_by_type("pipeline_run")
        if c.name.startswith("") and _belongs(store, c, pipeline_name)
    ]
    if not runs:
        raise LookupError(f"no run of pipeline {pipeline_name!r} in ML Metadata")
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    nodes = []
    for e in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        nodes.append(
            NodeRun(
                node=_node_name(store, e),
                state=STATE_NAMES.get(e.last_known_state, str(e.last_known_state)),
                seconds=(e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000,
            )
        )
    return run.name, nodes


def _belongs(store, run_context, pipeline_name: str) -> bool:
    parents = store.get_parent_contexts_by_context(run_context.id)
    return not parents or any(p.name == pipeline_name for p in parents)


def _node_name(store, execution) -> str:
    for context in store.get_contexts_by_execution(execution.id):
        if context.type == "node" or store.get_context_types_by_id([context.type_id])[0].name == "node":
            return context.name.split(".", 1)[-1]
    return store.get_execution_types_by_id([execution.type_id])[0].name
