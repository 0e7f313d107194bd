"""Shared test helpers: where the data is, and how to run the project's commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(
    os.environ.get("TAGGER_DATA_DIR", REPO.parent / "shared" / "data" / "stackoverflow")
)


def run_module(*args: str, cwd: Path = REPO, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python ARGS...` as the user would, capturing its output."""
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
            f"\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def data_slice(tmp_path_factory) -> Path:
    """The first 600 rows of the shared train.tsv as train.tsv, the next 300 as more.tsv."""
    source = DATA_DIR / "train.tsv"
    if not source.exists():
        pytest.fail(f"{source} is missing: set TAGGER_DATA_DIR (see README)")
    out = tmp_path_factory.mktemp("slice")
    with open(source, "rb") as f:
        lines = [next(f) for _ in range(901)]  # header + 900 rows
    (out / "train.tsv").write_bytes(b"".join(lines[:601]))
    (out / "more.tsv").write_bytes(lines[0] + b"".join(lines[601:]))
    return out
