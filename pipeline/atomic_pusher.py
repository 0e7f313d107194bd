"""Pusher whose push never exposes a half-written version to a model server.

A model server (TF Serving, or serving/model_server) polls <base>/ and aspires the
highest integer-named child. Two ways to make sure it only ever loads a whole version:

- A filesystem with atomic rename (local disk, NFS): the copy goes to a hidden staging
  name and one rename publishes it. The server sees nothing, then everything.
- An object store (gs://, s3://): there is no rename, and a "directory" exists as soon as
  one object under its prefix does. But each object appears whole or not at all, and
  listing is strongly consistent (GCS guarantees both). So every file is copied into
  <base>/<version>/ with saved_model.pb LAST. TF Serving's SavedModel loader reads
  saved_model.pb first and fails the load with NOT_FOUND while it is absent; the server
  retries a failed load (--max_num_load_retries, default 5, every
  --load_retry_interval_micros, default 60 s) and its availability-preserving policy
  keeps serving the old version until the new one has loaded. Once saved_model.pb
  exists, every other file of the version already does. A copy that fails half way is
  deleted again, so no version is left that can never load.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils

from contract import serving_layout
from contract.digests import tree_sha256

EVALUATION_KEY = "model_evaluation"


def existing_versions(base_directory: str) -> list[int]:
    """Version numbers under base_directory, oldest first (only integer names are versions)."""
    if not fileio.exists(base_directory):
        return []
    return list(serving_layout.versions(fileio.listdir(base_directory)))


def next_version(base_directory: str) -> int:
    """A Unix-time version, bumped past any existing version so versions only grow."""
    return max([int(time.time())] + [v + 1 for v in existing_versions(base_directory)])


def tree_digest(path: str) -> str:
    """sha256 over a directory's relative file names and contents (local or gs://)."""
    names = [
        os.path.relpath(os.path.join(directory, name), path)
        for directory, _, files in fileio.walk(path)
        for name in files
    ]
    return tree_sha256(names, lambda name: fileio.open(os.path.join(path, name), "rb"))


def serving_version_of(model_path: str, base_directory: str) -> str | None:
    """The newest version under base_directory if it holds exactly this model, else None."""
    versions = existing_versions(base_directory)
    if not versions:
        return None
    latest = str(versions[-1])
    same = tree_digest(os.path.join(base_directory, latest)) == tree_digest(model_path)
    return latest if same else None


# The file whose presence makes a SavedModel loadable: written last to an object store.
LOADABLE_MARKER = "saved_model.pb"


def has_atomic_rename(path: str) -> bool:
    """Local paths rename atomically; anything behind a URL scheme is an object store."""
    return "://" not in path or path.startswith("file://")


def _files_loadable_last(model_path: str) -> list[str]:
    """The model's files relative to model_path, saved_model.pb at the end."""
    files = [
        os.path.relpath(os.path.join(directory, name), model_path)
        for directory, _, names in fileio.walk(model_path)
        for name in names
    ]
    return sorted(files, key=lambda f: (f == LOADABLE_MARKER, f))


def _copy_loadable_last(model_path: str, final: str) -> None:
    try:
        for relative in _files_loadable_last(model_path):
            target = os.path.join(final, relative)
            fileio.makedirs(os.path.dirname(target))
            fileio.copy(os.path.join(model_path, relative), target, overwrite=True)
    except BaseException:
        if fileio.exists(final):
            fileio.rmtree(final)  # a version without saved_model.pb would never load
        raise


def publish(
    model_path: str, base_directory: str, before: Callable[[str], None] | None = None
) -> tuple[str, str]:
    """Copy model_path to <base_directory>/<new version> so that no model server can load
    it before it is whole (see the module docstring). Returns (path, version).

    before(version), if given, runs once the version is chosen and before any of it is
    visible: what clients read beside a version is there when the version appears."""
    fileio.makedirs(base_directory)
    version = str(next_version(base_directory))
    if before is not None:
        before(version)
    final = os.path.join(base_directory, version)
    if not has_atomic_rename(base_directory):
        _copy_loadable_last(model_path, final)
        return final, version
    staging = os.path.join(base_directory, serving_layout.staging_name(int(version)))
    if fileio.exists(staging):
        fileio.rmtree(staging)
    io_utils.copy_dir(model_path, staging)
    fileio.rename(staging, final)
    return final, version


class _Executor(pusher_executor.Executor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("AtomicPusher pushes to a directory or bucket only")
        model_path = self.GetModelPath(input_dict)
        base = destination.filesystem.base_directory
        # A rerun with no new data re-blesses the same model against itself as baseline;
        # pushing it again would make the server reload an identical version.
        already = serving_version_of(model_path, base)
        if already is not None:
            logging.info("model already serving as version %s; nothing pushed", already)
            self._MarkNotPushed(model_push)
            return
        evaluation_uri = None
        if input_dict.get(EVALUATION_KEY):
            evaluation_uri = artifact_utils.get_single_uri(input_dict[EVALUATION_KEY])

        def quality_first(version: str) -> None:
            # Written before the version appears, so the app's first scrape of a new
            # version already has its quality gauges.
            if evaluation_uri is None:
                return
            try:
                publish_quality(evaluation_uri, base, version)
            except Exception:  # noqa: BLE001 - the model still goes out; only its gauges lack
                logging.exception("version %s: its quality could not be published", version)

        serving_path, version = publish(model_path, base, before=quality_first)
        io_utils.copy_dir(model_path, model_push.uri)  # the archived copy TFX keeps
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)


def publish_quality(evaluation_uri: str, base_directory: str, version: str) -> None:
    """Write the candidate's headline Evaluator metrics beside the pushed version."""
    from pipeline import evaluation  # TFMA: slow to import, needed only here

    metrics = evaluation.overall(evaluation.load(evaluation_uri))
    path = serving_layout.quality_path(base_directory, version)
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, "w") as f:
        f.write(serving_layout.quality_record(version, metrics, time.time()))


class AtomicPusherSpec(standard_component_specs.PusherSpec):
    """The Pusher's inputs, and the Evaluator's result to publish beside the model."""

    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        EVALUATION_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.ModelEvaluation, optional=True
        ),
    }


class AtomicPusher(base_component.BaseComponent):
    """A filesystem Pusher (see the module docstring) that also publishes the model's
    Evaluator metrics at serving_layout.quality_path(base, version)."""

    SPEC_CLASS = AtomicPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(_Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        push_destination: pusher_pb2.PushDestination,
        model_evaluation: types.BaseChannel | None = None,
    ) -> None:
        super().__init__(
            spec=AtomicPusherSpec(
                model=model,
                model_blessing=model_blessing,
                model_evaluation=model_evaluation,
                push_destination=push_destination,
                custom_config=json_utils.dumps(None),
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            )
        )
