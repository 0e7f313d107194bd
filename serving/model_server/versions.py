"""The version manager: which versions exist on disk, which to serve, and their states.

It works like TF Serving's file-system source plus its availability-preserving manager:
integer-named directories under each base path are versions; the model's version policy
(latest N, all, specific) picks the aspired ones; a new version is loaded and warmed up
before it is published; an old one is unpublished only once an aspired version is
available, or when its directory is gone. Requests already holding the old servable
finish on it. A failed load leaves the version in END with its error and is retried when
the directory's contents change (a copy that was still in progress, a fixed model).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from contract import serving_layout
from serving.model_server.errors import Code, ServingError, invalid_argument, not_found
from serving.model_server.servable import Servable

State = get_model_status_pb2.ModelVersionStatus.State
log = logging.getLogger(__name__)

# (model_path, succeeded, seconds) for each load attempt, for the metrics.
LoadListener = Callable[[str, bool, float], None]


@dataclasses.dataclass
class VersionRecord:
    version: int
    state: int = State.START
    error: ServingError | None = None
    fingerprint: tuple = ()  # of the directory, at the last load attempt


def list_versions(base_path: Path) -> dict[int, Path]:
    """Version subdirectories by number (a staging copy such as `.incoming-7` is none)."""
    try:
        directories = [entry.name for entry in os.scandir(base_path) if entry.is_dir()]
    except OSError:
        return {}
    found = serving_layout.versions(directories)
    return {number: base_path / name for number, name in found.items()}


def fingerprint(path: Path) -> tuple:
    """Names, sizes and mtimes of every file under a version: changes while a copy runs."""
    items = []
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            items.append(
                (os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns)
            )
    return tuple(sorted(items))


def aspired_versions(config: model_server_config_pb2.ModelConfig, on_disk: set[int]) -> set[int]:
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(on_disk)
    if kind == "specific":
        return set(policy.specific.versions) & on_disk
    latest = max(1, policy.latest.num_versions) if kind == "latest" else 1
    return set(sorted(on_disk)[-latest:])


class Model:
    """The versions of one configured model."""

    def __init__(self, config: model_server_config_pb2.ModelConfig) -> None:
        self.config = config
        self.name = config.name
        self.base_path = Path(config.base_path)
        self.labels = dict(config.version_labels)
        # Labels of a re-read config wait here until every version they name is loaded,
        # as TF Serving refuses a label for a version that is not available.
        self.wanted_labels = dict(self.labels)
        self.records: dict[int, VersionRecord] = {}
        # Published servables. Replaced as a whole, never mutated, so readers need no lock.
        self.available: dict[int, Servable] = {}


class ModelManager:
    def __init__(
        self,
        configs: list[model_server_config_pb2.ModelConfig],
        on_load: LoadListener | None = None,
        allow_labels_for_unavailable: bool = False,
    ) -> None:
        self.models = {c.name: Model(c) for c in configs}
        self._on_load = on_load or (lambda path, ok, seconds: None)
        self._allow_unavailable = allow_labels_for_unavailable
        self._lock = threading.Lock()  # guards records; one poll runs at a time

    def reconfigure(self, configs: list[model_server_config_pb2.ModelConfig]) -> None:
        """A re-read model config: models added and dropped, policies and labels changed.
        Versions move at the next poll, with the same availability rules as at start;
        a model whose base path changed starts again from nothing."""
        models = {}
        for config in configs:
            model = self.models.get(config.name)
            if model is None or model.config.base_path != config.base_path:
                model = Model(config)
                model.labels = {}
            model.config = config
            model.wanted_labels = dict(config.version_labels)
            models[config.name] = model
        self.models = models

    # --- requests ----------------------------------------------------------------------

    def servable(self, name: str, version: int | None, label: str | None) -> Servable:
        model = self.models.get(name)
        if version is None and label is not None:
            version = self.label_version(name, label)
        available = model.available if model else {}
        if version is None:
            if not available:
                raise not_found(f"Servable not found for request: Latest({name})")
            return available[max(available)]
        if version not in available:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return available[version]

    def unavailable_labels(self) -> list[str]:
        """TF Serving's complaint for each label that points at a version not loaded."""
        return [
            f"Request to assign label to version {version} of model {model.name}, which is "
            "not currently available for inference"
            for model in self.models.values()
            for version in model.labels.values()
            if version not in model.available
        ]

    def label_version(self, name: str, label: str) -> int:
        model = self.models.get(name)
        if model is None or label not in model.labels:
            raise invalid_argument(f"Unrecognized servable version label: {label}")
        return model.labels[label]

    def status(
        self, name: str, version: int | None, label: str | None
    ) -> get_model_status_pb2.GetModelStatusResponse:
        model = self.models.get(name)
        if version is None and label is not None:
            version = self.label_version(name, label)
        with self._lock:
            records = sorted(
                (dataclasses.replace(r) for r in (model.records.values() if model else ())),
                key=lambda r: -r.version,
            )
        if version is not None:
            records = [r for r in records if r.version == version]
            if not records:
                raise not_found(f"Could not find version {version} of model {name}")
        elif not records:
            raise not_found(f"Could not find any versions of model {name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for record in records:
            entry = response.model_version_status.add(version=record.version, state=record.state)
            entry.status.error_code = record.error.code if record.error else Code.OK
            entry.status.error_message = record.error.message if record.error else ""
        return response

    # --- the file system ---------------------------------------------------------------

    def poll(self) -> None:
        """One pass over every base path: load, retry and unload as the policy says."""
        for model in self.models.values():
            self._poll_model(model)

    def _poll_model(self, model: Model) -> None:
        on_disk = list_versions(model.base_path)
        aspired = aspired_versions(model.config, set(on_disk))
        for version in sorted(aspired, reverse=True):  # the newest first
            record = model.records.get(version)
            path = on_disk[version]
            if record is None:
                with self._lock:
                    model.records[version] = record = VersionRecord(version)
            retry = record.state == State.END and (
                record.error is None or fingerprint(path) != record.fingerprint
            )
            if record.state == State.START or retry:
                self._load(model, record, path)

        have_aspired = any(v in model.available for v in aspired)
        for version in sorted(model.available):
            if version in aspired:
                continue
            if version not in on_disk or have_aspired:
                self._unload(model, version)
        self._apply_labels(model)

    def _apply_labels(self, model: Model) -> None:
        if model.wanted_labels == model.labels:
            return
        missing = {v for v in model.wanted_labels.values() if v not in model.available}
        if missing and not self._allow_unavailable:
            log.warning("Labels of %s wait for versions %s to load", model.name, sorted(missing))
            return
        model.labels = dict(model.wanted_labels)  # replaced whole: readers take no lock
        log.info("Labels of %s are now %s", model.name, model.labels)

    def _load(self, model: Model, record: VersionRecord, path: Path) -> None:
        with self._lock:
            record.state, record.error = State.LOADING, None
            record.fingerprint = before = fingerprint(path)
        started = time.monotonic()
        try:
            servable = Servable(model.name, record.version, path)
            servable.warm_up()
            if fingerprint(path) != before:
                raise ServingError(
                    Code.UNAVAILABLE, f"{path} changed while loading; retried when it settles"
                )
        except Exception as e:  # noqa: BLE001 - any load failure is reported in the status
            error = e if isinstance(e, ServingError) else _as_serving_error(e)
            self._on_load(str(path), False, time.monotonic() - started)
            log.warning(
                "Loading servable %s version %d failed: %s", model.name, record.version, error
            )
            with self._lock:
                record.state, record.error = State.END, error
            return
        self._on_load(str(path), True, time.monotonic() - started)
        with self._lock:
            model.available = {**model.available, record.version: servable}
            record.state = State.AVAILABLE
        log.info(
            "Successfully loaded servable version {name: %s version: %d}",
            model.name,
            record.version,
        )

    def _unload(self, model: Model, version: int) -> None:
        with self._lock:
            model.records[version].state = State.UNLOADING
            model.available = {v: s for v, s in model.available.items() if v != version}
            model.records[version].state = State.END
        log.info("Unloaded %s version %d", model.name, version)


def _as_serving_error(e: Exception) -> ServingError:
    if isinstance(e, tf.errors.OpError):
        return ServingError(Code(e.error_code), e.message)
    return ServingError(Code.UNKNOWN, f"{type(e).__name__}: {e}")
