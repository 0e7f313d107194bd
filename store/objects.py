"""Whole files under a local directory or a gs:// prefix, for both sides.

Written whole or not at all: a local file is written beside its name and renamed into
place, and a Cloud Storage object becomes visible only when its upload completes, so a
reader never sees half of one. The storage client is made once, with the credentials of
the environment (Workload Identity on GKE); tests replace `client` at that boundary.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

GCS = "gs://"
TIMEOUT_S = 10.0


@functools.cache
def client():
    from google.cloud import storage

    return storage.Client()


def _blob(path: str):
    bucket, _, name = path.removeprefix(GCS).partition("/")
    return client().bucket(bucket).blob(name)


def join(base: str, *names: str) -> str:
    return "/".join([base.rstrip("/"), *names])


def read(path: str) -> bytes | None:
    """The file's bytes, or None when there is none."""
    if not path.startswith(GCS):
        try:
            return Path(path).read_bytes()
        except FileNotFoundError:
            return None
    from google.api_core import exceptions

    try:
        return _blob(path).download_as_bytes(timeout=TIMEOUT_S)
    except exceptions.NotFound:
        return None


def write(path: str, data: bytes) -> None:
    """Replace the file at path with data, all at once."""
    if path.startswith(GCS):
        _blob(path).upload_from_string(data, timeout=TIMEOUT_S)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def delete(path: str) -> None:
    """Remove the file at path; nothing to do when there is none."""
    if not path.startswith(GCS):
        Path(path).unlink(missing_ok=True)
        return
    from google.api_core import exceptions

    try:
        _blob(path).delete(timeout=TIMEOUT_S)
    except exceptions.NotFound:
        pass


def children(base: str) -> list[str]:
    """Names directly under base: files and directories, without the prefix."""
    if not base.startswith(GCS):
        try:
            return sorted(entry.name for entry in os.scandir(base))
        except OSError:
            return []
    bucket, _, prefix = base.removeprefix(GCS).partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    blobs = client().list_blobs(bucket, prefix=prefix, delimiter="/", timeout=TIMEOUT_S)
    names = [b.name.removeprefix(prefix) for b in blobs]
    names += [p.removeprefix(prefix).rstrip("/") for p in blobs.prefixes]
    return sorted(n for n in names if n)
