"""Where the checkout and the data are, and how tests run the project's commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline import paths

REPO = paths.CHECKOUT
DATA_DIR = paths.data_dir()


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
