"""The Pusher's publish step on a filesystem with object-store semantics (gs:// has no
rename): a model server polling the bucket must never find a loadable, incomplete version."""

from __future__ import annotations

import pytest

from pipeline import atomic_pusher
from tests.object_store import SCHEME, ObjectStore

BASE = f"{SCHEME}bucket/serving/tagger"
MODEL_FILES = {
    "saved_model.pb": b"graph",
    "fingerprint.pb": b"fp",
    "variables/variables.index": b"index",
    "variables/variables.data-00000-of-00001": b"weights" * 100,
    "assets/terms": b"python\njava\n",
}


@pytest.fixture
def model(tmp_path):
    for name, data in MODEL_FILES.items():
        (tmp_path / "model" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "model" / name).write_bytes(data)
    ObjectStore.reset()
    yield str(tmp_path / "model")
    ObjectStore.reset()


def loadable_versions(names: frozenset[str]) -> dict[str, set[str]]:
    """What TF Serving could load at this moment: versions whose saved_model.pb exists."""
    found: dict[str, set[str]] = {}
    for name in names:
        version, _, rest = name[len(BASE) + 1 :].partition("/")
        found.setdefault(version, set()).add(rest)
    return {v: files for v, files in found.items() if "saved_model.pb" in files}


def test_every_loadable_moment_shows_a_whole_version(model):
    seen = []
    ObjectStore.observers.append(lambda names: seen.append(loadable_versions(names)))
    path, version = atomic_pusher.publish(model, BASE)
    assert path == f"{BASE}/{version}"
    assert len(seen) == len(MODEL_FILES)  # one snapshot per object written
    assert all(files == set(MODEL_FILES) for moment in seen for files in moment.values())
    assert seen[-1] == {version: set(MODEL_FILES)} and all(not m for m in seen[:-1])
    for name, data in MODEL_FILES.items():
        assert ObjectStore.objects[f"{BASE}/{version}/{name}"] == data


def test_a_push_that_dies_half_way_leaves_no_version_behind(model):
    ObjectStore.fail_after_writes = 3
    with pytest.raises(OSError, match="simulated failure"):
        atomic_pusher.publish(model, BASE)
    assert ObjectStore.objects == {}  # nothing that a server would keep failing to load
    ObjectStore.fail_after_writes = None
    _, version = atomic_pusher.publish(model, BASE)
    assert atomic_pusher.existing_versions(BASE) == [int(version)]


def test_the_pusher_recognises_the_version_already_in_the_bucket(model):
    _, version = atomic_pusher.publish(model, BASE)
    assert atomic_pusher.serving_version_of(model, BASE) == version
    _, newer = atomic_pusher.publish(model, BASE)
    assert int(newer) > int(version)  # versions only grow
