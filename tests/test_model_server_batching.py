"""Batching under concurrency, the full queue, graceful shutdown and memory under load."""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from tests.model_server_process import model_server, wait_for
from tests.toy_model import save_toy_model

TITLES = [
    "How to merge two dicts in python",
    "SELECT rows with JOIN in mysql",
    "jQuery click event not firing",
    "Java NullPointerException in ArrayList",
    "C# LINQ group by multiple columns",
    "Android activity lifecycle onResume",
    "Convert string to int in c++",
    "Regex to match an email address in javascript",
]


def write(path, text: str):
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, tagger_model):
    root = tmp_path_factory.mktemp("batching")
    save_toy_model(root / "toy" / "1", 1)
    shutil.copytree(tagger_model, root / "tagger" / "1")
    return root


def batching_toy_server(models, name: str, parameters: str, *more: str):
    """A server for the toy model with batching on, under the given BatchingParameters."""
    return model_server(
        "--model_name=toy",
        f"--model_base_path={models / 'toy'}",
        "--enable_batching",
        f"--batching_parameters_file={write(models / f'{name}.config', parameters)}",
        *more,
        log_dir=models,
    )


def batch_metrics(server, model: str) -> tuple[int, float]:
    """(batches run, rows in them) from the batch-size histogram."""
    text = server.get("/monitoring/prometheus/metrics").body.decode()
    name = ":tensorflow:serving:batching_session:processed_batch_size"
    count = re.search(rf'{name}_count{{model_name="{model}"}} (\d+)', text)
    total = re.search(rf'{name}_sum{{model_name="{model}"}} (\d+)', text)
    return int(count[1]), float(total[1])


def test_concurrent_clients_are_batched_and_each_gets_its_own_rows(models):
    batching = write(
        models / "batching.config",
        "max_batch_size { value: 16 } batch_timeout_micros { value: 20000 }"
        " num_batch_threads { value: 2 } max_enqueued_batches { value: 100 }",
    )
    monitoring = write(models / "monitoring.config", "prometheus_config { enable: true }")
    unbatched = {}
    with model_server(
        "--model_name=tagger", f"--model_base_path={models / 'tagger'}", log_dir=models
    ) as plain:
        for title in TITLES:
            reply = plain.post("/v1/models/tagger:predict", {"instances": [title]})
            unbatched[title] = reply.json()["predictions"][0]
    config = write(
        models / "models.config",
        f"""
model_config_list {{
  config {{ name: "toy" base_path: "{models / "toy"}" model_platform: "tensorflow" }}
  config {{ name: "tagger" base_path: "{models / "tagger"}" model_platform: "tensorflow" }}
}}""",
    )
    with model_server(
        f"--model_config_file={config}",
        "--enable_batching",
        f"--batching_parameters_file={batching}",
        f"--monitoring_config_file={monitoring}",
        log_dir=models,
    ) as server:

        def toy(i: int):
            body = {"instances": [{"a": [float(i), 0.5], "b": i}] * (1 + i % 3)}
            return i, server.post("/v1/models/toy:predict", body)

        def tagger(i: int):
            title = TITLES[i % len(TITLES)]
            return title, server.post("/v1/models/tagger:predict", {"instances": [title]})

        with ThreadPoolExecutor(64) as pool:
            toy_replies = list(pool.map(toy, range(256)))
            tagger_replies = list(pool.map(tagger, range(128)))

        for i, reply in toy_replies:
            assert reply.status == 200, reply.body
            rows = reply.json()["predictions"]
            assert rows == [{"total": 2 * i + 0.5, "version": 1}] * (1 + i % 3)
        for title, reply in tagger_replies:
            assert reply.status == 200, reply.body
            row, alone = reply.json()["predictions"][0], unbatched[title]
            # Same model, same title; a batch of another size may round the last bits.
            assert row["tags"] == alone["tags"] and row["threshold"] == alone["threshold"]
            assert row["scores"] == pytest.approx(alone["scores"], rel=1e-5, abs=1e-7)

        batches, rows = batch_metrics(server, "toy")
        assert rows == sum(1 + i % 3 for i in range(256))
        assert batches < 256  # requests were merged
        tagger_batches, tagger_rows = batch_metrics(server, "tagger")
        assert tagger_rows == 128 and tagger_batches < 128

        too_big = {"instances": [{"a": [1.0, 2.0], "b": 1}] * 17}
        reply = server.post("/v1/models/toy:predict", too_big)
        assert reply.status == 400
        assert "Task size 17 is larger than maximum input batch size 16" in reply.json()["error"]


def test_a_lone_request_runs_once_the_batch_timeout_passes(models):
    # Nothing else arrives to fill the batch or free a thread: the timer alone must run it.
    lone = "max_batch_size { value: 64 } batch_timeout_micros { value: 5000 }"
    with batching_toy_server(models, "lone", lone) as server:
        for i in range(20):
            body = {"instances": [{"a": [float(i), 0.0], "b": 0}]}
            reply = server.request("POST", "/v1/models/toy:predict", body, timeout=10)
            assert reply.json() == {"predictions": [{"total": float(i), "version": 1}]}


def test_full_batch_queue_answers_503(models):
    tight = (
        "max_batch_size { value: 1 } batch_timeout_micros { value: 0 }"
        " num_batch_threads { value: 1 } max_enqueued_batches { value: 1 }"
    )
    with batching_toy_server(models, "tight", tight) as server:
        slow = {"signature_name": "slow", "instances": [200_000]}
        with ThreadPoolExecutor(8) as pool:
            replies = list(
                pool.map(lambda _: server.post("/v1/models/toy:predict", slow), range(8))
            )
    statuses = sorted(r.status for r in replies)
    assert 200 in statuses and 503 in statuses, statuses
    for reply in replies:
        if reply.status == 503:
            assert reply.json() == {
                "error": "The batch scheduling queue to which this task was submitted is full"
            }


def test_sigterm_lets_in_flight_requests_finish(models):
    with model_server(
        "--model_name=toy", f"--model_base_path={models / 'toy'}", log_dir=models
    ) as server:
        result = {}

        def call():
            slow = {"signature_name": "slow", "instances": [600_000]}
            result["reply"] = server.post("/v1/models/toy:predict", slow)

        client = threading.Thread(target=call)
        client.start()
        # Give the request time to reach the server (it then runs for about 2 s), then stop.
        threading.Event().wait(1.0)
        server.process.send_signal(signal.SIGTERM)
        client.join(60)
        assert server.process.wait(60) == 0
    reply = result["reply"]
    assert reply.status == 200
    assert len(json.loads(reply.body)["predictions"]) == 1


def test_memory_stays_bounded_under_sustained_load(models):
    with model_server(
        "--model_name=tagger", f"--model_base_path={models / 'tagger'}", log_dir=models
    ) as server:
        process = psutil.Process(server.process.pid)

        def burst(n: int) -> None:
            with ThreadPoolExecutor(8) as pool:
                for reply in pool.map(
                    lambda i: server.post(
                        "/v1/models/tagger:predict", {"instances": [f"{TITLES[i % 8]} {i}"]}
                    ),
                    range(n),
                ):
                    assert reply.status == 200

        burst(500)  # warm: allocator pools, TF caches
        warm = process.memory_info().rss
        burst(3000)
        grown = process.memory_info().rss - warm
    # A leak of even 20 KB per request would show as 60 MB here.
    assert grown < 40 * 2**20, f"RSS grew {grown / 2**20:.1f} MB over 3000 requests"


def test_a_batch_whose_requests_all_gave_up_is_not_run(models):
    one_at_a_time = (
        "max_batch_size { value: 1 } batch_timeout_micros { value: 0 }"
        " num_batch_threads { value: 1 } max_enqueued_batches { value: 10 }"
    )
    monitoring = write(models / "monitoring.config", "prometheus_config { enable: true }")
    with batching_toy_server(
        models,
        "deadline",
        one_at_a_time,
        "--rest_api_timeout_in_ms=1000",
        f"--monitoring_config_file={monitoring}",
    ) as server:
        slow = {"signature_name": "slow", "instances": [400_000]}  # well over the deadline
        with ThreadPoolExecutor(3) as pool:
            replies = list(
                pool.map(lambda _: server.post("/v1/models/toy:predict", slow), range(3))
            )
        assert [r.status for r in replies] == [504, 504, 504]
        # The first was running when its deadline passed; the two queued behind it had
        # given up too by the time the thread was free, so they were never run.
        wait_for(
            lambda: (
                "processed_batch_size_count"
                in server.get("/monitoring/prometheus/metrics").body.decode()
            ),
            60,
            0.5,
        )
        threading.Event().wait(5)  # time for two more runs, were they made
        assert batch_metrics(server, "toy") == (1, 1.0)


def test_requests_over_the_row_bound_are_refused_before_any_work(models):
    with model_server(
        "--model_name=toy",
        f"--model_base_path={models / 'toy'}",
        "--rest_api_max_rows=100",
        log_dir=models,
    ) as server:
        rows = {"instances": [{"a": [1.0, 2.0], "b": 1}] * 101}
        reply = server.post("/v1/models/toy:predict", rows)
        assert reply.status == 400
        assert reply.json() == {
            "error": "Request has 101 rows, more than this server's limit of 100 "
            "(--rest_api_max_rows)"
        }
        rows["instances"] = rows["instances"][:100]
        assert len(server.post("/v1/models/toy:predict", rows).json()["predictions"]) == 100


def test_a_passed_deadline_stops_the_work_not_just_the_wait(models):
    with model_server(
        "--model_name=toy",
        f"--model_base_path={models / 'toy'}",
        "--rest_api_timeout_in_ms=1000",
        log_dir=models,
    ) as server:
        process = psutil.Process(server.process.pid)
        # 8 slices of 1024 rows, each a loop of about 0.7 s: some 6 s of work in all.
        slow = {"signature_name": "slow", "instances": [200_000] * 8192}
        reply = server.post("/v1/models/toy:predict", slow)
        assert reply.status == 504 and reply.json() == {"error": "Deadline Exceeded"}
        threading.Event().wait(1.0)  # the slice that was running when the deadline passed
        before = sum(process.cpu_times()[:2])
        threading.Event().wait(3.0)
        busy = sum(process.cpu_times()[:2]) - before
        assert busy < 0.5, f"the server kept computing: {busy:.1f} s of CPU in 3 s"
        fast = server.post("/v1/models/toy:predict", {"signature_name": "slow", "instances": [1]})
        assert fast.status == 200
