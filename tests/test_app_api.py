"""The tagging app's API against real servers on loopback: the app, our TF Serving
stand-in serving a real tagger, and a real SQLite feedback file."""

from __future__ import annotations

import http.client
import json
import re
import socket
import sqlite3
import time

import pytest

from serving.app import metrics as app_metrics
from serving.app import quality
from serving.app.metrics import AppMetrics
from tests import fake_gcs
from tests.app_stack import bearer, error_of, publish_quality, served_model, stack, stored_rows
from tests.commands import app_python, run_module
from tests.model_server_process import app_server, free_port

__all__ = ["bearer", "served_model", "stack"]  # fixtures


def test_predict_answers_tags_candidates_and_the_version(stack):
    app, _ = stack
    reply = app.post("/api/predict", {"title": "  How to merge two dicts in python  "})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["title"] == "How to merge two dicts in python"
    assert body["model_version"] == "7"
    assert 0 < body["threshold"] < 1
    # The model's rule: every tag at or above the threshold, and always at least one.
    assert body["tags"] and all(t["score"] >= body["threshold"] for t in body["tags"][1:])
    assert len(body["candidates"]) == 5
    assert all(c["score"] < body["threshold"] for c in body["candidates"])
    scores = [t["score"] for t in body["tags"] + body["candidates"]]
    assert scores == sorted(scores, reverse=True)


def test_a_title_the_model_knows_nothing_about_still_gets_its_top_tag(stack):
    app, _ = stack
    body = app.post("/api/predict", {"title": "qqqq zzzz"}).json()
    assert len(body["tags"]) == 1 and body["tags"][0]["score"] < body["threshold"]
    assert body["tags"][0]["score"] >= body["candidates"][0]["score"]


def test_feedback_is_201_once_stored_and_normalised(stack):
    app, database = stack
    before = len(stored_rows(database))
    sent = {
        "title": "Sort a dict by value",
        "predicted": ["java"],
        "actual": ["Python", "JS"],
        "model_version": "7",
    }
    reply = app.post("/api/feedback", sent)
    assert reply.status == 201, reply.body
    body = reply.json()
    rows = stored_rows(database)
    assert len(rows) == before + 1
    assert rows[-1] == (body["id"], "Sort a dict by value", '["javascript", "python"]', "accepted")


def test_unknown_tags_go_to_review_and_can_be_decided_over_the_api(stack, bearer):
    app, database = stack
    reviewer = bearer["reviewer"]
    reply = app.post("/api/feedback", {"title": "Lifetimes in rust", "actual": ["rust"]})
    assert reply.status == 201 and reply.json()["review"] == ["rust"]
    queue = app.get("/api/review/tags?status=pending_review", headers=reviewer).json()["tags"]
    rust = next(row for row in queue if row["tag"] == "rust")
    assert (rust["samples_waiting"], rust["examples"], rust["sources"]) == (
        1,
        ["Lifetimes in rust"],
        1,
    )
    decided = app.post("/api/review/tags/rust:accept", {"alias_of": "c++"}, headers=reviewer)
    assert decided.json() == {"tag": "rust", "decision": "accept", "samples_released": 1}
    assert stored_rows(database)[-1][2:] == ('["c++"]', "accepted")
    assert error_of(app.post("/api/review/tags/nope:reject", {}, headers=reviewer), 404)
    with sqlite3.connect(database) as db:
        (decided_by,) = db.execute(
            "SELECT decided_by FROM tag_review WHERE tag = 'rust'"
        ).fetchone()
    assert decided_by == "test-reviewer"


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        ({"title": "", "actual": ["python"]}, None, 400, "'title' is empty"),
        ({"title": "x" * 301, "actual": ["python"]}, None, 400, "at most 300"),
        (
            b'{"title": "caf\xe9", "actual": ["python"]}',
            {"Content-Type": "application/json"},
            400,
            "not UTF-8",
        ),
        ({"title": "t", "actual": ["python"], "user": "me"}, None, 400, "unknown fields: user"),
        ({"title": "t", "actual": [1, 2]}, None, 400, "a tag must be a string"),
        ({"title": "t", "actual": "python"}, None, 400, "must be a list of tag strings"),
        ({"title": "t", "actual": ""}, None, 400, "must be a list of tag strings"),
        (b'{"title": "t", "actual": ["python"]}', {"Content-Type": "text/plain"}, 415, "JSON"),
        (b"{not json", {"Content-Type": "application/json"}, 400, "not JSON"),
        (
            json.dumps({"title": "t" * 20000, "actual": ["python"]}).encode(),
            {"Content-Type": "application/json"},
            413,
            "larger than",
        ),
    ],
)
def test_bad_feedback_is_a_clear_4xx_and_stores_nothing(stack, body, headers, status, message):
    app, database = stack
    before = stored_rows(database)
    assert message in error_of(app.post("/api/feedback", body, headers=headers), status)
    assert stored_rows(database) == before


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"title": ""}, 400, "'title' is empty"),
        ({"title": 3}, 400, "must be a string"),
        ({"title": "t", "x": 1}, 400, "unknown fields: x"),
        ({}, 400, "missing field: title"),
    ],
)
def test_bad_predict_requests_are_4xx(stack, body, status, message):
    app, _ = stack
    assert message in error_of(app.post("/api/predict", body), status)


def test_every_response_carries_the_security_headers_and_no_server_version(stack):
    app, _ = stack
    for method, path, body in [
        ("GET", "/", None),
        ("GET", "/static/app.js", None),
        ("GET", "/api/health", None),
        ("GET", "/nowhere", None),
        ("POST", "/api/predict", {"title": ""}),
    ]:
        conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        reply.read()
        headers = {k.lower(): v for k, v in reply.getheaders()}
        conn.close()
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy, path
        assert "frame-ancestors 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"]
        assert not re.search(r"\d", headers.get("server", "")), headers.get("server")


def test_a_body_sent_in_several_writes_is_read_whole(stack):
    app, _ = stack
    body = json.dumps({"title": "How to merge two dicts in python"}).encode()
    with socket.create_connection(("127.0.0.1", app.port), timeout=30) as conn:
        conn.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        for part in (body[:10], body[10:25], body[25:]):  # as a proxy may pass it on
            conn.sendall(part)
            time.sleep(0.3)
        answer = b"".join(iter(lambda: conn.recv(65536), b""))
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:300]
    assert json.loads(payload)["title"] == "How to merge two dicts in python"


def test_state_changing_requests_must_be_json_even_without_a_body(stack, bearer):
    app, _ = stack
    assert app.post("/api/feedback", {"title": "Borrow checker", "actual": ["zig"]}).status == 201
    for headers, body in [
        ({}, None),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"alias_of=python"),
        ({"Content-Type": "text/plain"}, b""),
    ]:
        reply = app.request(
            "POST", "/api/review/tags/zig:accept", body, headers={**headers, **bearer["reviewer"]}
        )
        assert "JSON" in error_of(reply, 415)
    listed = app.get("/api/review/tags", headers=bearer["reviewer"]).json()["tags"]
    assert {t["tag"]: t["status"] for t in listed}["zig"] == "pending_review"
    # A body-less request that says it is JSON is a decision without an alias.
    as_json = {"Content-Type": "application/json", **bearer["reviewer"]}
    reply = app.request("POST", "/api/review/tags/zig:reject", b"", headers=as_json)
    assert reply.status == 200 and reply.json()["decision"] == "reject"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://tagger.example.com"},
    ],
)
def test_cross_site_posts_are_refused_and_change_nothing(stack, headers):
    app, database = stack
    before = stored_rows(database)
    reply = app.post("/api/feedback", {"title": "t", "actual": ["python"]}, headers=headers)
    assert "cross-site" in error_of(reply, 403)
    assert stored_rows(database) == before
    same = {"Origin": f"http://127.0.0.1:{app.port}", "Sec-Fetch-Site": "same-origin"}
    assert app.post("/api/predict", {"title": "python"}, headers=same).status == 200


def test_health_ready_openapi_and_metrics(stack):
    app, _ = stack
    assert app.get("/api/health").json() == {"status": "alive"}
    assert app.get("/api/ready").json() == {"status": "ready", "model_version": "7"}
    spec = app.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/feedback" in spec["paths"]
    assert error_of(app.get("/metrics"), 404)  # not on the public port
    text = app.metrics().body.decode()
    assert "stackoverflow_tagger_model_version 7\n" in text
    # The first scrape after start-up already has the served version's quality.
    assert "stackoverflow_tagger_f1_score 0.6683\n" in text
    assert "stackoverflow_tagger_roc_auc 0.95\n" in text
    assert 'stackoverflow_tagger_feedback_samples{status="accepted"}' in text
    assert 'stackoverflow_tagger_retrain_runs_total{outcome="blessed"} 0' in text
    assert "stackoverflow_tagger_request_latency_seconds_bucket" in text


def test_a_model_server_that_is_down_is_503_with_a_reason_not_a_hang(tmp_path):
    dead = free_port()  # nothing listens here
    with app_server(
        f"--model-url=http://127.0.0.1:{dead}",
        f"--feedback={tmp_path / 'f.db'}",
        "--model-timeout=2",
        log_dir=tmp_path,
    ) as app:
        started = time.monotonic()
        assert "did not answer" in error_of(app.post("/api/predict", {"title": "python"}), 503)
        assert "did not answer" in error_of(app.get("/api/ready"), 503)
        assert time.monotonic() - started < 10
        assert app.get("/api/health").status == 200
        # Feedback needs no model: it is still stored.
        assert app.post("/api/feedback", {"title": "t", "actual": ["python"]}).status == 201


def test_quality_is_read_from_the_file_the_pusher_publishes_and_retried_while_absent(
    tmp_path, monkeypatch
):
    base = tmp_path / "tagger"
    publish_quality(base, "7", {"micro_f1_score": 0.6683, "micro_auc": 0.95}, 1700000000.0)
    metrics = AppMetrics(model_base_path=str(base))
    page = metrics.render("7", metrics.quality("7"), {}, {})
    assert "stackoverflow_tagger_f1_score 0.6683\n" in page
    assert "stackoverflow_tagger_roc_auc 0.95\n" in page
    assert "stackoverflow_tagger_latest_model_update 1700000000\n" in page
    # A version pushed before its quality file appears: unknown, no error, asked again.
    assert metrics.quality("8") is None
    assert "stackoverflow_tagger_f1_score" not in metrics.render("8", None, {}, {})
    publish_quality(base, "8", {"micro_f1_score": 0.7})
    assert metrics.quality("8") is None  # not asked again at once
    monkeypatch.setattr(app_metrics, "RETRY_SECONDS", 0.0)
    assert metrics.quality("8").metrics == {"micro_f1_score": 0.7}


def test_quality_under_a_gs_base_path_is_read_through_the_storage_client(monkeypatch):
    published = {"version": "3", "pushed_at": 5.0, "metrics": {"exact_match": 0.4}}
    gcs = fake_gcs.install(monkeypatch)
    gcs.objects["models/serving/tagger/quality/3.json"] = json.dumps(published).encode()
    metrics = AppMetrics(model_base_path="gs://models/serving/tagger")
    assert metrics.quality("3") == quality.Quality({"exact_match": 0.4}, 5.0)
    assert "stackoverflow_tagger_accuracy_score 0.4\n" in metrics.render(
        "3", metrics.quality("3"), {}, {}
    )
    assert metrics.quality("4") is None  # no such object: unknown, not an error


def test_the_deployment_smoke_test_checks_tags_and_the_version_answering(stack):
    app, _ = stack
    url = f"http://127.0.0.1:{app.port}"
    passed = run_module("-m", "serving.smoke", url, "--expect-version", "7", python=app_python())
    assert passed.stdout.startswith("smoke: version 7 answered: ")
    wrong = run_module(
        "-m", "serving.smoke", url, "--expect-version", "8", check=False, python=app_python()
    )
    assert wrong.returncode == 1
    assert "version 7 answered, not the deployed 8" in wrong.stderr
    down = run_module("-m", "serving.smoke", "http://127.0.0.1:9", check=False, python=app_python())
    assert down.returncode == 1 and "did not answer" in down.stderr
