"""The tagger's model code: Transform's preprocessing_fn, Trainer's run_fn, and what they share.

Installed as a package (setup.py) and named by import path in the pipeline, so the same
code runs locally, in the pipeline image on Vertex AI, and on Dataflow workers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def file_version(path: Path) -> str:
    """sha256 (16 hex digits) of one file's contents."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def code_version(package: Path = PACKAGE_DIR) -> str:
    """sha256 (16 hex digits) of a package's source files: changes when the code does."""
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]
