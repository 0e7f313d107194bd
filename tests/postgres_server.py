"""A real PostgreSQL server for the tests, in a temporary directory, as a non-root user.

Debian's postgresql package (in the environment's root) provides initdb and postgres;
PostgreSQL refuses to run as root, so as root the server runs as `nobody` (setpriv).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
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


class PostgresServer:
    """A running server; restart() stops it (fast shutdown, as a failover does) and starts
    it again on the same port and data."""

    def __init__(self, bin_dir: Path, workdir: Path, as_user: list[str]) -> None:
        self.bin_dir, self.workdir, self.as_user = bin_dir, workdir, as_user
        self.port = free_port()
        self.log = workdir / "postgres.log"
        self.url = f"postgresql://tagger@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [
                    *self.as_user,
                    self.bin_dir / "postgres",
                    "-D",
                    self.workdir / "pgdata",
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.workdir),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=on",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while b"ready to accept connections" not in self.log.read_bytes()[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"PostgreSQL did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: clients are cut off
            self.process.wait(30)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def database(self, name: str) -> str:
        """A fresh, empty database on this server; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server (database `postgres`, user `tagger`)."""
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
    server = PostgresServer(bin_dir, workdir, as_user)
    try:
        server.start()
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.terminate()
            server.process.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
