"""Keeping a person's terminal readable: TensorFlow, Beam and TFX write to fds 1 and 2
directly (C++ logging) and at length; these send it elsewhere."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


@contextlib.contextmanager
def output_to(log_path: str | Path):
    """Send fds 1 and 2 (TensorFlow's C++ logging writes there directly) and Python's
    logging to log_path; yield a function that still prints on the terminal."""
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    saved = os.dup(1), os.dup(2)
    sys.stdout.flush(), sys.stderr.flush()
    with open(log_path, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield lambda line: print(line, file=terminal, flush=True)
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)
            terminal.close()


@contextlib.contextmanager
def quiet_imports():
    """TensorFlow's imports (and library calls) without the start-up chatter and warnings
    they write straight to fds 1 and 2; for commands a person reads. Exceptions still
    propagate."""
    with output_to(os.devnull):
        yield
