"""Where the checkout and the data are, and how tests run the project's commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
