"""Start the model server as a user would (a subprocess on a free loopback port) and talk
to it over real HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.commands import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Reply:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclasses.dataclass
class Server:
    port: int
    process: subprocess.Popen
    log: Path

    def request(self, method: str, path: str, body=None, timeout: float = 60) -> Reply:
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return Reply(response.status, response.read())
        finally:
            conn.close()

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body) -> Reply:
        return self.request("POST", path, body)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def model_server(*args: str, log_dir: Path, startup_timeout: float = 180) -> Iterator[Server]:
    port = free_port()
    log = log_dir / f"model_server_{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving.model_server", f"--rest_api_port={port}",
             "--rest_api_host=127.0.0.1", *args],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy(),
        )  # fmt: skip
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while "Exporting HTTP/REST API" not in server.output():
            if process.poll() is not None:
                raise AssertionError(
                    f"model server exited {process.returncode}:\n{server.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"model server did not start:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(condition, timeout: float, interval: float = 0.05):
    """Poll until condition() is truthy; returns its value, or fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
