"""Hot reload and failure isolation: versions appear, break and vanish under live traffic.

One server watches a `toy` base path (default policy: the latest version) and polls it
every POLL seconds. The toy model answers with its own version number, so every reply
says which version served it. The steps build on each other, in order.
"""

from __future__ import annotations

import re
import shutil
import threading
import time

import pytest

from contract import serving_layout
from tests.model_server_process import model_server, wait_for
from tests.toy_model import save_toy_model

POLL = 0.5
ROWS = {"instances": [{"a": [1.0, 2.0], "b": 3}]}


class Traffic:
    """A client that keeps sending predict requests and records every outcome."""

    def __init__(self, server) -> None:
        self.server, self.outcomes, self._stop = server, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reply = self.server.post("/v1/models/toy:predict", ROWS)
                version = reply.json()["predictions"][0]["version"] if reply.status == 200 else None
                self.outcomes.append((time.monotonic(), reply.status, version))
            except Exception as e:  # noqa: BLE001 - a dropped connection is a failure too
                self.outcomes.append((time.monotonic(), repr(e), None))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def failures(self) -> list:
        return [o for o in self.outcomes if o[1] != 200]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("reload")
    built = root / "built"
    for version in (1, 2, 3):
        save_toy_model(built / str(version), version)
    base = root / "toy"
    shutil.copytree(built / "1", base / "1")
    monitoring = root / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n")
    with model_server(
        "--model_name=toy",
        f"--model_base_path={base}",
        f"--file_system_poll_wait_seconds={POLL}",
        f"--monitoring_config_file={monitoring}",
        log_dir=root,
    ) as server:
        yield server, base, built


def served_version(server) -> int:
    return server.post("/v1/models/toy:predict", ROWS).json()["predictions"][0]["version"]


def states(server) -> dict[str, tuple[str, str]]:
    body = server.get("/v1/models/toy").json()
    return {
        s["version"]: (s["state"], s["status"]["error_code"]) for s in body["model_version_status"]
    }


def load_seconds(server, version_dir) -> float:
    text = server.get("/monitoring/prometheus/metrics").body.decode()
    path = re.escape(str(version_dir))
    pattern = rf':tensorflow:cc:saved_model:load_latency{{model_path="{path}"}} (\d+)'
    return int(re.search(pattern, text)[1]) / 1e6


def test_new_version_takes_over_with_no_failed_request(setup):
    server, base, built = setup
    assert served_version(server) == 1
    with Traffic(server) as traffic:
        time.sleep(0.5)
        # The way the Pusher writes: a non-numeric name first, then one rename.
        staging = base / serving_layout.staging_name(2)
        shutil.copytree(built / "2", staging)
        copied = time.monotonic()
        staging.rename(base / "2")
        wait_for(lambda: any(o[2] == 2 for o in traffic.outcomes), timeout=60)
        time.sleep(0.5)
    assert traffic.failures() == []
    first_v2 = min(t for t, status, version in traffic.outcomes if version == 2)
    # New version answers within one poll interval plus its own load time (as the server
    # measured it), with a second of slack for scheduling on a busy machine.
    assert first_v2 - copied <= POLL + load_seconds(server, base / "2") + 1.0
    assert traffic.outcomes[-1][2] == 2
    assert wait_for(lambda: states(server).get("1") == ("END", "OK"), timeout=10)
    assert states(server)["2"] == ("AVAILABLE", "OK")


def test_half_written_version_is_never_served_and_loads_once_complete(setup):
    server, base, built = setup
    (base / "3").mkdir()
    shutil.copy(built / "3" / "saved_model.pb", base / "3" / "saved_model.pb")  # no variables yet
    wait_for(lambda: states(server).get("3", ("", ""))[0] == "END", timeout=30)
    state, code = states(server)["3"]
    assert code != "OK"
    status = server.get("/v1/models/toy/versions/3").json()["model_version_status"][0]
    assert status["status"]["error_message"]
    assert served_version(server) == 2
    # The copy completes: the directory changed, so the load is retried.
    shutil.copytree(built / "3" / "variables", base / "3" / "variables")
    for extra in ("assets", "fingerprint.pb"):
        if (built / "3" / extra).exists():
            src, dst = built / "3" / extra, base / "3" / extra
            shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)
    wait_for(lambda: served_version(server) == 3, timeout=60)
    assert states(server)["3"] == ("AVAILABLE", "OK")


def test_corrupt_version_shows_its_error_and_the_served_one_keeps_answering(setup):
    server, base, _ = setup
    (base / "4").mkdir()
    (base / "4" / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    wait_for(lambda: states(server).get("4", ("", ""))[0] == "END", timeout=30)
    status = server.get("/v1/models/toy/versions/4").json()["model_version_status"][0]
    assert status["status"]["error_code"] != "OK" and status["status"]["error_message"]
    assert served_version(server) == 3
    assert states(server)["3"] == ("AVAILABLE", "OK")


def test_removed_version_is_unloaded(setup):
    server, base, _ = setup
    shutil.rmtree(base / "4")
    shutil.rmtree(base / "3")
    # Version 3 is gone; version 2 is the latest on disk again, so it is served again.
    wait_for(lambda: states(server).get("3") == ("END", "OK"), timeout=30)
    wait_for(lambda: served_version(server) == 2, timeout=60)
