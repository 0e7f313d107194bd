"""Each judged window as an execution in ML Metadata, beside the pipeline's runs: type
DriftMonitor, with the window, the model version, what was above, and the alarm."""

from __future__ import annotations

import json

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

EXECUTION_TYPE = "DriftMonitor"


def writer(path: str):
    """A function that records a window's result in the ML Metadata store at path."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    sqlite = metadata_store_pb2.SqliteMetadataSourceConfig
    config.sqlite.connection_mode = sqlite.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    kind = metadata_store_pb2.ExecutionType(name=EXECUTION_TYPE)
    type_id = store.put_execution_type(kind)

    def record(result: dict) -> None:
        execution = metadata_store_pb2.Execution(
            type_id=type_id, last_known_state=metadata_store_pb2.Execution.COMPLETE
        )
        properties = execution.custom_properties
        properties["window_start"].int_value = result["window_start"]
        properties["window_end"].int_value = result["window_end"]
        properties["requests"].int_value = result["requests"]
        properties["model_version"].string_value = result["model_version"]
        properties["above"].string_value = json.dumps(result["above"])
        properties["alarm"].int_value = int(result["alarm"])
        properties["domain_auc"].double_value = result["domain_auc"]
        properties["skew"].string_value = json.dumps(result["skew"])
        properties["drift"].string_value = json.dumps(result["drift"])
        store.put_executions([execution])

    return record
