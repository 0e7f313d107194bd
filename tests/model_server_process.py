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

from tests.commands import REPO, app_python


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports. The sockets are held until all n are bound: ports
    asked for one at a time can come back the same once the first socket is closed."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def free_port() -> int:
    return free_ports(1)[0]


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
    metrics_port: int | None = None

    def request(
        self, method: str, path: str, body=None, timeout: float = 60, headers=None
    ) -> Reply:
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Reply(response.status, response.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def metrics(self) -> Reply:
        """GET /metrics from the app's monitoring port."""
        return dataclasses.replace(self, port=self.metrics_port).get("/metrics")

    def post(self, path: str, body, **kwargs) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serving_process(
    argv: list[str],
    port: int,
    ready: str,
    log_dir: Path,
    startup_timeout: float = 180,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Start `python ARGV...` as a user would; yield once its log shows `ready`.
    env: variables to set on top of this process's environment."""
    log = log_dir / f"{argv[1].rsplit('.', 1)[-1]}_{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [python, *argv],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while ready not in server.output():
            if process.poll() is not None:
                raise AssertionError(f"{argv} exited {process.returncode}:\n{server.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{argv} did not start:\n{server.output()}")
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


@contextlib.contextmanager
def model_server(*args: str, log_dir: Path, startup_timeout: float = 180) -> Iterator[Server]:
    port = free_port()
    argv = ["-m", "serving.model_server", f"--rest_api_port={port}", "--rest_api_host=127.0.0.1"]
    with serving_process(
        [*argv, *args], port, "Exporting HTTP/REST API", log_dir, startup_timeout
    ) as server:
        yield server


@contextlib.contextmanager
def app_server(*args: str, log_dir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """The tagging app (serving/app) on a free loopback port, run from its own virtualenv
    (no training stack), as its image runs it."""
    port, metrics_port = free_ports(2)
    argv = [
        "-m",
        "serving.app",
        f"--port={port}",
        "--host=127.0.0.1",
        f"--metrics-port={metrics_port}",
        *args,
    ]
    with serving_process(argv, port, "app listening on", log_dir, 60, app_python(), env) as server:
        server.metrics_port = metrics_port
        yield server


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
