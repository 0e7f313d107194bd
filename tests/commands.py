"""Where the checkout and the data are, and how tests run the project's commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from contract import paths

REPO = paths.CHECKOUT
DATA_DIR = paths.data_dir()


def app_python() -> str:
    """The app's own interpreter: the virtualenv of serving/requirements.lock, without the
    training stack, which builder/env.sh names in TAGGER_APP_PYTHON."""
    found = os.environ.get("TAGGER_APP_PYTHON")
    if not found:
        raise AssertionError("TAGGER_APP_PYTHON is not set: run the tests with `make test`")
    return found


def run_module(
    *args: str,
    cwd: Path = REPO,
    check: bool = True,
    python: str = sys.executable,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """Run `python ARGS...` as the user would, capturing its output; timeout in seconds
    guards against a hang."""
    proc = subprocess.run([python, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
            f"\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc
