"""ExampleGen over a range of data spans, with each span's content hash on the artifact.

One Examples artifact per run holds every span in the requested range (default: all
spans present). Imported spans are split by the hash of each whole example, so an
example keeps its split (train, eval or test) in every run that reads it. Feedback
spans (written by the learning worker) go to the training split only: what people send
changes what the model learns, never what the Evaluator judges it on, so the blessing
gate rests on a trusted evaluation set that feedback cannot enter. StatisticsGen and
ExampleValidator then judge all of them together, and a bad span stops the run before
Transform.

Why not one span per run plus a resolver that gathers the validated ones: Vertex AI
Pipelines compiles only the LatestArtifact and LatestBlessedModel resolver strategies,
and a resolver that walks ML Metadata cannot run there. Reading the range in ExampleGen
uses nothing Vertex lacks.

The input pattern covers every span, so the driver's fingerprint (file names, sizes and
mtimes; TFX's and Vertex's cache key) changes whenever a span is added or withdrawn.
Each span's data is checked against the sha256 its import wrote into MANIFEST.json, so a
half-copied span in a bucket fails the run instead of training on part of it.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from google.protobuf import any_pb2, json_format, struct_pb2
from tfx import types
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from contract import metadata_names as names
from contract.digests import stream_sha256
from ingest import spans

ALL_SPANS_PATTERN = spans.SPAN_DIR_FORMAT.format(span="*") + "/" + spans.DATA_FILE
LAST = 2**31 - 1  # "no upper bound" for a span range
PROVENANCE = (spans.SOURCE, spans.FEEDBACK_BATCH)  # copied from manifests to the artifact
DEFAULT_FEEDBACK_SPLIT = "train"


class SpanDataError(RuntimeError):
    """A span whose data is missing or does not match its manifest."""


def select_spans(spans_dir: str, first: int, last: int) -> list[dict]:
    """The spans in [first, last] under spans_dir, oldest first, each checked against its
    manifest: [{"span", "sha256", "examples", "path"}]."""
    if not fileio.isdir(spans_dir):
        raise SpanDataError(f"no spans directory at {spans_dir}")
    chosen = []
    for name in fileio.listdir(spans_dir):
        match = spans.SPAN_DIR.match(name.rstrip("/"))
        if not match or not first <= int(match.group(1)) <= last:
            continue
        directory = os.path.join(spans_dir, name.rstrip("/"))
        data = os.path.join(directory, spans.DATA_FILE)
        manifest_path = os.path.join(directory, spans.MANIFEST_FILE)
        if not fileio.exists(manifest_path) or not fileio.exists(data):
            raise SpanDataError(
                f"{directory} is incomplete: it needs {spans.DATA_FILE} and "
                f"{spans.MANIFEST_FILE} (still being copied?)"
            )
        with fileio.open(manifest_path, "r") as f:
            manifest = json.loads(f.read())
        with fileio.open(data, "rb") as f:
            actual = stream_sha256(f)
        if actual != manifest["sha256"]:
            raise SpanDataError(
                f"{data} has sha256 {actual[:12]}, its manifest says {manifest['sha256'][:12]}: "
                "the span is damaged or still being copied"
            )
        chosen.append(
            {
                "span": int(match.group(1)),
                "sha256": actual,
                "examples": manifest["examples"],
                "path": data,
                **{k: manifest[k] for k in PROVENANCE if k in manifest},
            }
        )
    if not chosen:
        raise SpanDataError(f"no span numbered {first}..{last} under {spans_dir}")
    return sorted(chosen, key=lambda s: s["span"])


def _feature_kinds(path: str) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for record in tf.data.TFRecordDataset(path):
        for name, feature in tf.train.Example.FromString(record.numpy()).features.feature.items():
            kind = feature.WhichOneof("kind")
            if kind is not None:
                kinds.setdefault(name, set()).add(kind)
    return kinds


def check_feature_types(chosen: list[dict]) -> None:
    """Fail, naming the spans, when a feature has more than one type among them.

    Every other data problem is ExampleValidator's to find, but this one would stop
    StatisticsGen itself (a batch cannot hold one feature as both bytes and int64) with
    no word on which span is at fault.
    """
    by_feature: dict[str, dict[str, list[int]]] = {}
    for span in chosen:
        for name, kinds in _feature_kinds(span["path"]).items():
            for kind in kinds:
                by_feature.setdefault(name, {}).setdefault(kind, []).append(span["span"])
    mixed = {name: kinds for name, kinds in sorted(by_feature.items()) if len(kinds) > 1}
    if mixed:
        lines = [
            f"feature '{name}' is "
            + "; ".join(
                f"{kind} in span {', '.join(map(str, nums))}" for kind, nums in kinds.items()
            )
            for name, kinds in mixed.items()
        ]
        raise SpanDataError(
            "spans disagree on feature types, so they cannot be read together:\n  "
            + "\n  ".join(lines)
            + f"\n{spans.WITHDRAW_HINT}"
        )


def span_range_config(
    first: int, last: int, feedback_split: str = DEFAULT_FEEDBACK_SPLIT
) -> example_gen_pb2.CustomConfig:
    packed = any_pb2.Any()
    packed.Pack(
        struct_pb2.Struct(
            fields={
                "first_span": struct_pb2.Value(number_value=first),
                "last_span": struct_pb2.Value(number_value=last),
                "feedback_split": struct_pb2.Value(string_value=feedback_split),
            }
        )
    )
    return example_gen_pb2.CustomConfig(custom_config=packed)


def _custom_fields(exec_properties: dict[str, Any]) -> dict[str, struct_pb2.Value]:
    config = example_gen_pb2.CustomConfig()
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if raw:
        json_format.Parse(raw, config)
    bounds = struct_pb2.Struct()
    if config.HasField("custom_config"):
        config.custom_config.Unpack(bounds)
    return dict(bounds.fields)


def _span_range(exec_properties: dict[str, Any]) -> tuple[int, int]:
    fields = _custom_fields(exec_properties)
    first = int(fields["first_span"].number_value) if "first_span" in fields else 0
    last = int(fields["last_span"].number_value) if "last_span" in fields else LAST
    return first, last


def _feedback_split(exec_properties: dict[str, Any]) -> str:
    fields = _custom_fields(exec_properties)
    found = fields.get("feedback_split")
    return found.string_value if found is not None else DEFAULT_FEEDBACK_SPLIT


def split_of(example: tf.train.Example, buckets: list[int]) -> int:
    """The split index of an imported example: the sha256 of the whole serialized
    example, modulo the buckets (TFX ExampleGen's own rule, so splits are as before)."""
    digest = hashlib.sha256(example.SerializeToString(deterministic=True)).hexdigest()
    return bisect.bisect(buckets, int(digest, 16) % buckets[-1])


def _chosen(exec_properties: dict[str, Any]) -> list[dict]:
    return select_spans(
        exec_properties[standard_component_specs.INPUT_BASE_KEY], *_span_range(exec_properties)
    )


@beam.ptransform_fn
def _read(pipeline: beam.Pipeline, files: list[str]) -> beam.PCollection:
    return (
        pipeline
        | "SpanFiles" >> beam.Create(files)
        | "ReadSpans" >> beam.io.ReadAllFromTFRecord()
        | "ToTFExample" >> beam.Map(tf.train.Example.FromString)
    )


class Executor(import_executor.Executor):
    # GenerateExamplesByBeam below reads the spans itself (it splits imported and feedback
    # spans differently); this reads them all, for callers of the base class's interface.
    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        @beam.ptransform_fn
        def read_spans(pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern):
            del split_pattern  # the spans come from the range, not from the pattern
            return pipeline | _read([s["path"] for s in _chosen(exec_properties)])

        return read_spans

    def GenerateExamplesByBeam(
        self, pipeline: beam.Pipeline, exec_properties: dict[str, Any]
    ) -> dict[str, beam.PCollection]:
        """Imported spans split by hash buckets; feedback spans into the feedback split."""
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
        )
        names = [split.name for split in output_config.split_config.splits]
        buckets = list(
            itertools.accumulate(s.hash_buckets for s in output_config.split_config.splits)
        )
        feedback_split = _feedback_split(exec_properties)
        if feedback_split not in names:
            raise ValueError(f"feedback split {feedback_split!r} is not one of {names}")
        chosen = _chosen(exec_properties)
        imported = [s["path"] for s in chosen if s.get(spans.SOURCE) != spans.FEEDBACK_SOURCE]
        feedback = [s["path"] for s in chosen if s.get(spans.SOURCE) == spans.FEEDBACK_SOURCE]
        if imported:
            by_hash = beam.Partition(lambda example, n: split_of(example, buckets), len(names))
            parts = pipeline | "Imported" >> _read(imported) | "SplitData" >> by_hash
        else:
            parts = [pipeline | f"NoImported[{name}]" >> beam.Create([]) for name in names]
        result = dict(zip(names, parts, strict=True))
        if feedback:
            result[feedback_split] = (
                result[feedback_split],
                pipeline | "Feedback" >> _read(feedback),
            ) | "WithFeedback" >> beam.Flatten()
        return result

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        chosen = _chosen(exec_properties)  # checked before any Beam work starts
        check_feature_types(chosen)
        super().Do(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY]
        )
        record = [{k: v for k, v in s.items() if k != "path"} for s in chosen]
        examples.set_string_custom_property(names.SPANS, json.dumps(record))
        numbers = ",".join(str(s["span"]) for s in chosen)
        examples.set_string_custom_property(names.SPAN_NUMBERS, numbers)
        examples.span = chosen[-1]["span"]  # the newest span read: what "latest" means


class SpanExampleGen(FileBasedExampleGen):
    """ExampleGen reading data spans first_span..last_span (inclusive) of spans_dir;
    feedback spans go to feedback_split only."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        spans_dir: str,
        output_config: example_gen_pb2.Output,
        first_span: int = 0,
        last_span: int = LAST,
        feedback_split: str = DEFAULT_FEEDBACK_SPLIT,
    ) -> None:
        super().__init__(
            input_base=spans_dir,
            input_config=example_gen_pb2.Input(
                splits=[example_gen_pb2.Input.Split(name="all", pattern=ALL_SPANS_PATTERN)]
            ),
            output_config=output_config,
            custom_config=span_range_config(first_span, last_span, feedback_split),
        )
