"""Content hashes: of one file's bytes, and of a tree of files.

Each caller opens its files with the I/O library it needs (the local file system,
TensorFlow's gfile for gs://); these only hash what they are given, so one formula holds
wherever the bytes come from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 20


def stream_sha256(stream: BinaryIO) -> str:
    """sha256 (hex) of what is left to read in `stream`, read a block at a time."""
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path | str) -> str:
    """sha256 (hex) of a local file's bytes."""
    with open(path, "rb") as f:
        return stream_sha256(f)


def tree_sha256(names: Iterable[str], opener: Callable[[str], BinaryIO]) -> str:
    """sha256 (hex) over a tree of files: each relative name, in sorted order, with the
    sha256 of its contents. opener(name) opens one for reading."""
    digest = hashlib.sha256()
    for name in sorted(names):
        with opener(name) as f:
            digest.update(name.encode() + b"\0" + bytes.fromhex(stream_sha256(f)))
    return digest.hexdigest()
