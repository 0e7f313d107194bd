"""ImportExampleGen that also records the content hash of the span it read.

ExampleGen's own fingerprint is built from file sizes and mtimes; the sha256 written by
the data import (span-N/MANIFEST.json) is what identifies the data, so it is copied onto
the Examples artifact where ML Metadata keeps it and the lineage command reads it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tfx import types
from tfx.components import ImportExampleGen
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs

from ingest import spans
from pipeline.metadata import SPAN_EXAMPLES, SPAN_SHA256


class _Executor(import_executor.Executor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        super().Do(input_dict, output_dict, exec_properties)
        span = exec_properties[example_gen_utils.SPAN_PROPERTY_NAME]
        manifest_path = os.path.join(
            exec_properties[standard_component_specs.INPUT_BASE_KEY],
            spans.SPAN_DIR_FORMAT.format(span=span),
            spans.MANIFEST_FILE,
        )
        with fileio.open(manifest_path, "r") as f:
            manifest = json.loads(f.read())
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY]
        )
        examples.set_string_custom_property(SPAN_SHA256, manifest["sha256"])
        examples.set_int_custom_property(SPAN_EXAMPLES, manifest["examples"])


class SpanExampleGen(ImportExampleGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(_Executor)
