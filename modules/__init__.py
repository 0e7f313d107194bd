"""The tagger's model code: Transform's preprocessing_fn, Trainer's run_fn, and what they share.

Installed as a package (setup.py) and named by import path in the pipeline, so the same
code runs locally, in the pipeline image on Vertex AI, and on Dataflow workers.
"""

from __future__ import annotations

from pathlib import Path

from contract.digests import file_sha256, tree_sha256

PACKAGE_DIR = Path(__file__).resolve().parent


def file_version(path: Path) -> str:
    """sha256 (16 hex digits) of one file's contents."""
    return file_sha256(path)[:16]


def code_version(package: Path = PACKAGE_DIR) -> str:
    """sha256 (16 hex digits) of a package's source files: changes when the code does."""
    names = [str(source.relative_to(package)) for source in package.rglob("*.py")]
    return tree_sha256(names, lambda name: open(package / name, "rb"))[:16]
