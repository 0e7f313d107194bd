"""Direct reads of an ML Metadata store, for assertions (as TFX's penguin end-to-end test
does). Independent of the project's own pipeline/metadata.py, which it checks."""

from __future__ import annotations

import json
from pathlib import Path

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

INPUT, OUTPUT = mlmd.Event.INPUT, mlmd.Event.OUTPUT
COMPLETE = mlmd.Execution.COMPLETE
STATE = {
    mlmd.Execution.COMPLETE: "ran",
    mlmd.Execution.CACHED: "cached",
    mlmd.Execution.FAILED: "failed",
}


class Store:
    def __init__(self, path: Path) -> None:
        config = mlmd.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READONLY
        self.store = metadata_store.MetadataStore(config)

    def runs(self) -> list[mlmd.Context]:
        """pipeline_run contexts, oldest first."""
        return sorted(self.store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)

    def node(self, execution: mlmd.Execution) -> str:
        (node,) = [
            c for c in self.store.get_contexts_by_execution(execution.id) if c.type == "node"
        ]
        return node.name.split(".", 1)[1]

    def states(self, run: int) -> dict[str, str]:
        """Component -> "ran" / "cached" / "failed" for the run-th run (0-based)."""
        context = self.runs()[run]
        return {
            self.node(e): STATE.get(e.last_known_state, str(e.last_known_state))
            for e in self.store.get_executions_by_context(context.id)
        }

    def execution(self, run: int, node: str) -> mlmd.Execution:
        context = self.runs()[run]
        (found,) = [
            e for e in self.store.get_executions_by_context(context.id) if self.node(e) == node
        ]
        return found

    def artifacts(self, execution: mlmd.Execution, kind: int, key: str) -> list[mlmd.Artifact]:
        """The execution's input (kind=INPUT) or output artifacts under key."""
        events = [
            e
            for e in self.store.get_events_by_execution_ids([execution.id])
            if e.type == kind and any(s.key == key for s in e.path.steps)
        ]
        return list(self.store.get_artifacts_by_id([e.artifact_id for e in events]))

    def executions_of(self, node: str) -> list[mlmd.Execution]:
        return [e for e in self.store.get_executions() if self.node(e) == node]


def prop(artifact: mlmd.Artifact, name: str):
    for properties in (artifact.custom_properties, artifact.properties):
        if name in properties:
            value = properties[name]
            return getattr(value, value.WhichOneof("value"))
    return None


def spans_read(artifact: mlmd.Artifact) -> list[dict]:
    return json.loads(prop(artifact, "spans"))
