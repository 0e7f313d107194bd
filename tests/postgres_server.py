"""A real PostgreSQL server for the tests, in a temporary directory, as a non-root user.

Debian's postgresql package (in the environment's root) provides initdb and postgres;
PostgreSQL refuses to run as root, so as root the server runs as `nobody` (setpriv).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.model_server_process import free_port


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise AssertionError("PostgreSQL is not installed: builder/root-packages.txt has it")
    return Path(found[-1]).parent


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yields its URL (database `postgres`, user `tagger`)."""
    bin_dir = _binaries()
    # Not under pytest's tmp_path: its parents are private to root, and the server is not.
    workdir = Path(tempfile.mkdtemp(prefix="so-tagger-postgres-"))
    data = workdir / "pgdata"
    data.mkdir()
    as_user: list[str] = []
    if os.getuid() == 0:
        shutil.chown(workdir, "nobody")
        shutil.chown(data, "nobody")
        as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    initdb = [*as_user, bin_dir / "initdb", "-D", data, "-U", "tagger", "--auth=trust", "--no-sync"]
    init = subprocess.run(initdb, capture_output=True, text=True)
    if init.returncode != 0:
        raise AssertionError(f"initdb failed:\n{init.stdout}{init.stderr}")
    port = free_port()
    log = workdir / "postgres.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [*as_user, bin_dir / "postgres", "-D", data, "-p", str(port), "-k", str(workdir),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while b"ready to accept connections" not in log.read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"PostgreSQL did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield f"postgresql://tagger@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
