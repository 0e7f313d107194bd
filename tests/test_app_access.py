"""Who may call what, and how much: every endpoint against every role, rate limits per
source, where a sample says it came from, Identity-Aware Proxy's signed header, slow
clients, and a feedback store whose PostgreSQL restarts under traffic. All against the
real app process on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

from serving.app.group_commit import GroupCommit
from serving.app.http import ApiError
from serving.feedback import tokens
from store.samples import parse_feedback
from tests.app_stack import bearer, error_of, served_model, stack
from tests.commands import REPO, app_python
from tests.model_server_process import app_server, wait_for
from tests.postgres_server import postgres_server
from tests.stores import Opened, make_token, sqlite_url

__all__ = ["bearer", "served_model", "stack"]  # fixtures

# (method, path, body, the role it needs; None: no identity needed at all)
ENDPOINTS = [
    ("POST", "/api/predict", {"title": "python list comprehension"}, "anyone"),
    ("POST", "/api/feedback", {"title": "merge dicts", "actual": ["python"]}, "anyone"),
    ("GET", "/api/tags", None, "anyone"),
    ("GET", "/api/whoami", None, "anyone"),
    ("GET", "/api/review/tags", None, "reviewer"),
    ("POST", "/api/review/tags/nosuchtag:reject", {}, "reviewer"),
    ("POST", "/api/review/tags/nosuchtag:accept", {"alias_of": "python"}, "reviewer"),
    ("GET", "/api/sources", None, "operator"),
    ("POST", "/api/sources/client:nobody:withdraw", {"reason": "test"}, "operator"),
    ("GET", "/api/rollout", None, "operator"),
    ("POST", "/api/rollout:promote", {}, "operator"),
    ("POST", "/api/rollout:rollback", {"reason": "test"}, "operator"),
    ("GET", "/api/health", None, None),
    ("GET", "/api/ready", None, None),
    ("GET", "/api/openapi.json", None, None),
    ("GET", "/", None, None),
]
RANK = {"anyone": 0, "reviewer": 1, "operator": 2}


@pytest.mark.parametrize("caller", ["anyone", "reviewer", "operator", "bad token", "not bearer"])
def test_every_endpoint_against_every_role(stack, bearer, caller):
    app, _ = stack
    headers = {
        "anyone": {},
        "bad token": {"Authorization": "Bearer sot_not-a-real-token"},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        **bearer,
    }[caller]
    for method, path, body, needed in ENDPOINTS:
        reply = app.request(method, path, body, headers=headers)
        if needed is None:
            assert reply.status == 200, (caller, path, reply.body[:200])
        elif caller in ("bad token", "not bearer"):
            assert error_of(reply, 401), (caller, path)
        elif RANK[caller] >= RANK[needed]:
            assert reply.status not in (401, 403), (caller, path, reply.body[:200])
        else:
            assert f"needs the {needed} role" in error_of(reply, 403), (caller, path)
    if caller in RANK:
        assert app.get("/api/whoami", headers=headers).json()["role"] == caller


def test_a_revoked_token_is_refused_at_once(stack, tmp_path):
    app, database = stack
    token = make_token(sqlite_url(database), "short-lived", "reviewer")
    headers = {"Authorization": f"Bearer {token}"}
    assert app.get("/api/review/tags", headers=headers).status == 200
    store = Opened.at(sqlite_url(database))
    try:
        tokens.revoke(store.db, "short-lived")
    finally:
        store.close()
    assert "revoked" in error_of(app.get("/api/review/tags", headers=headers), 401)


def source_key(database) -> bytes:
    with sqlite3.connect(database) as db:
        (key,) = db.execute("SELECT value FROM setting WHERE name = 'source_key'").fetchone()
    return key.encode()


def keyed(key: bytes, address: str) -> str:
    return "client:" + hmac.new(key, address.encode(), hashlib.sha256).hexdigest()[:20]


def last_source(database) -> str:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT source FROM feedback ORDER BY id DESC LIMIT 1").fetchone()[0]


@pytest.fixture
def limited(served_model, tmp_path):
    """An app with small limits, behind a trusted proxy at 127.0.0.1 (one hop)."""
    models, base = served_model
    database = tmp_path / "feedback.db"
    with app_server(
        f"--model-url=http://127.0.0.1:{models.port}",
        f"--feedback={database}",
        f"--model-base-path={base}",
        "--feedback-rate=0.5",
        "--feedback-burst=3",
        "--predict-rate=1",
        "--predict-burst=5",
        "--trusted-proxy=127.0.0.1/32",
        log_dir=tmp_path,
    ) as app:
        yield app, database


def test_each_source_is_rate_limited_with_retry_after_and_others_are_not(limited):
    app, database = limited
    one = {"X-Forwarded-For": "203.0.113.7"}
    sent = [
        app.post("/api/feedback", {"title": f"q{i}", "actual": ["python"]}, headers=one)
        for i in range(4)
    ]
    assert [r.status for r in sent] == [201, 201, 201, 429]
    assert "too many feedback requests" in error_of(sent[3], 429)
    retry = int(response_header(app, "POST", "/api/feedback", one, "Retry-After"))
    assert 1 <= retry <= 2
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 3  # none stored
    # Another client behind the same proxy has its own bucket.
    other = {"X-Forwarded-For": "198.51.100.9"}
    assert (
        app.post("/api/feedback", {"title": "x", "actual": ["python"]}, headers=other).status == 201
    )
    predicted = [
        app.post("/api/predict", {"title": "python"}, headers=one).status for _ in range(6)
    ]
    assert predicted == [200] * 5 + [429]
    time.sleep(retry)
    assert (
        app.post("/api/feedback", {"title": "later", "actual": ["python"]}, headers=one).status
        == 201
    )


def response_header(app, method: str, path: str, headers: dict, name: str) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    try:
        conn.request(
            method,
            path,
            json.dumps({"title": "t", "actual": ["python"]}).encode(),
            {"Content-Type": "application/json", **headers},
        )
        response = conn.getresponse()
        response.read()
        return response.getheader(name)
    finally:
        conn.close()


def test_a_sample_records_its_source_never_the_address(limited, stack, bearer):
    app, database = limited
    key = source_key(database)
    # Behind the trusted proxy: the entry the proxy appended names the client; what the
    # client put to its left is its own invention and changes nothing.
    app.post(
        "/api/feedback",
        {"title": "a", "actual": ["python"]},
        headers={"X-Forwarded-For": "6.6.6.6, 192.0.2.44"},
    )
    assert last_source(database) == keyed(key, "192.0.2.44")
    app.post(
        "/api/feedback",
        {"title": "b", "actual": ["python"]},
        headers={"X-Forwarded-For": "1.1.1.1, 192.0.2.44"},
    )
    assert last_source(database) == keyed(key, "192.0.2.44")
    app.post(
        "/api/feedback",
        {"title": "c", "actual": ["python"]},
        headers={"X-Forwarded-For": "2001:db8:1:2::5"},
    )
    assert last_source(database) == keyed(key, "2001:db8:1:2::/64")
    # Without a trusted proxy, X-Forwarded-For is not believed at all.
    public, public_db = stack
    public.post(
        "/api/feedback",
        {"title": "d", "actual": ["python"]},
        headers={"X-Forwarded-For": "192.0.2.44"},
    )
    assert last_source(public_db) == keyed(source_key(public_db), "127.0.0.1")
    public.post("/api/feedback", {"title": "e", "actual": ["python"]}, headers=bearer["reviewer"])
    assert last_source(public_db) == "token:test-reviewer"
    with sqlite3.connect(database) as db:
        stored = db.execute("SELECT * FROM feedback").fetchall()
    assert "192.0.2.44" not in repr(stored) and "127.0.0.1" not in repr(stored)
    public.post("/api/predict", {"title": "python"})  # the app has seen version 7 serve
    public.post("/api/feedback", {"title": "f", "actual": ["python"], "model_version": "6"})
    with sqlite3.connect(public_db) as db:
        claimed, served, received = db.execute(
            "SELECT model_version, served_version, received_at FROM feedback "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    # What the client says answered it, beside what the app was serving: never confused.
    assert (claimed, served) == ("6", "7") and abs(received - time.time()) < 60


def test_an_operator_lists_and_withdraws_a_source(stack, bearer):
    app, database = stack
    flood = {"X-Forwarded-For": "ignored"}
    for i in range(3):
        app.post("/api/feedback", {"title": f"flood {i}", "actual": ["java"]}, headers=flood)
    source = keyed(source_key(database), "127.0.0.1")
    listed = app.get("/api/sources", headers=bearer["operator"]).json()["sources"]
    assert any(row["source"] == source and row["accepted"] >= 3 for row in listed)
    done = app.post(
        f"/api/sources/{source}:withdraw", {"reason": "flood"}, headers=bearer["operator"]
    ).json()
    assert done["source"] == source and done["waiting"] >= 3
    with sqlite3.connect(database) as db:
        statuses = {
            s for (s,) in db.execute("SELECT status FROM feedback WHERE source = ?", (source,))
        }
    assert statuses == {"withdrawn"}
    assert "say why" in error_of(
        app.post(f"/api/sources/{source}:withdraw", {"reason": " "}, headers=bearer["operator"]),
        400,
    )


def test_slow_clients_are_dropped_when_their_headers_are_late(served_model, tmp_path):
    models, base = served_model
    with app_server(
        f"--model-url=http://127.0.0.1:{models.port}",
        f"--feedback={tmp_path / 'f.db'}",
        "--header-timeout=1",
        log_dir=tmp_path,
    ) as app:
        slow = []
        for _ in range(20):
            conn = socket.create_connection(("127.0.0.1", app.port), timeout=10)
            conn.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(conn)
        started = time.monotonic()
        closed = set()
        while len(closed) < len(slow) and time.monotonic() - started < 10:
            for n, conn in enumerate(slow):
                if n in closed:
                    continue
                try:
                    conn.sendall(b"X")  # one byte of a header every 0.2 s
                    conn.setblocking(False)
                    if conn.recv(1024) == b"":
                        closed.add(n)
                except BlockingIOError:
                    pass
                except OSError:
                    closed.add(n)
                finally:
                    conn.setblocking(True)
            time.sleep(0.2)
        assert len(closed) == len(slow), f"{len(closed)} of {len(slow)} closed"
        for conn in slow:
            conn.close()
        assert app.post("/api/predict", {"title": "python"}).status == 200  # still serving


def test_a_full_commit_queue_answers_503_and_loses_nothing_it_acknowledged(tmp_path):
    path = tmp_path / "f.db"
    store = Opened.at(sqlite_url(path))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database

    async def scenario() -> tuple[list, list]:
        writer = GroupCommit(store.feedback, bound=3)
        writer.start()
        items = [parse_feedback({"title": f"t{i}", "actual": ["python"]}) for i in range(6)]
        pending = [asyncio.create_task(writer.add(item)) for item in items]
        await asyncio.sleep(0.5)
        refused = [t for t in pending if t.done() and isinstance(t.exception(), ApiError)]
        blocker.execute("ROLLBACK")
        stored = [await t for t in pending if t not in refused]
        writer.stop()
        return refused, stored

    refused, stored = asyncio.run(scenario())
    # Three wait in the queue (the writer is stuck on the locked database), the rest is
    # refused at once instead of piling up.
    assert [t.exception().status for t in refused] == [503, 503, 503]
    assert refused[0].exception().headers == {"Retry-After": "1"}
    assert len(stored) == 3 and all(s.id is not None for s in stored)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 3
    store.close()


# --- Identity-Aware Proxy ------------------------------------------------------------------

AUDIENCE = "/projects/123/global/backendServices/456"


@pytest.fixture(scope="module")
def iap_keys():
    """Google's IAP key endpoint, as a loopback server holding a key made here; yields
    (certs URL, signer, a second signer whose key the endpoint does not list)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from google.auth.crypt import es256

    def key_pair(kid: str):
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return es256.ES256Signer.from_string(pem, kid), public.decode()

    signer, public = key_pair("key-1")
    stranger, _ = key_pair("key-1")  # same key id, another key
    body = json.dumps({"key-1": public}).encode()

    class Keys(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/iap/verify/public_key", signer, stranger
    server.shutdown()


def assertion(
    signer,
    email: str,
    audience: str = AUDIENCE,
    issuer: str = "https://cloud.google.com/iap",
    expires_in: int = 600,
) -> dict:
    from google.auth import jwt

    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "email": email,
        "sub": f"accounts.google.com:{email}",
        "iat": now,
        "exp": now + expires_in,
    }
    return {"x-goog-iap-jwt-assertion": jwt.encode(signer, claims).decode()}


def test_behind_iap_only_signed_requests_pass_and_roles_come_from_the_map(
    served_model, iap_keys, tmp_path
):
    models, base = served_model
    certs_url, signer, stranger = iap_keys
    roles = {"reviewer": ["rev@example.com"], "operator": ["ops@example.com"]}
    database = tmp_path / "f.db"
    with app_server(
        f"--model-url=http://127.0.0.1:{models.port}",
        f"--feedback={database}",
        f"--iap-audience={AUDIENCE}",
        f"--iap-certs-url={certs_url}",
        log_dir=tmp_path,
        env={"TAGGER_IAP_ROLES": json.dumps(roles)},
    ) as app:
        predict = {"title": "python"}
        assert "Identity-Aware Proxy" in error_of(app.post("/api/predict", predict), 401)
        refused = [
            assertion(stranger, "rev@example.com"),  # not signed by IAP's key
            assertion(signer, "rev@example.com", audience="/projects/1/global/backendServices/9"),
            assertion(signer, "rev@example.com", issuer="https://accounts.google.com"),
            assertion(signer, "rev@example.com", expires_in=-120),
        ]
        for headers in refused:
            assert error_of(app.get("/api/review/tags", headers=headers), 401)
        anyone = assertion(signer, "someone@example.com")
        assert app.post("/api/predict", predict, headers=anyone).status == 200
        assert error_of(app.get("/api/review/tags", headers=anyone), 403)
        reviewer = assertion(signer, "Rev@Example.com")
        assert app.get("/api/review/tags", headers=reviewer).status == 200
        assert error_of(app.get("/api/sources", headers=reviewer), 403)
        assert app.get("/api/sources", headers=assertion(signer, "ops@example.com")).status == 200
        # A token is no way around the proxy.
        token = make_token(sqlite_url(database), "sneaky", "operator")
        assert error_of(app.get("/api/sources", headers={"Authorization": f"Bearer {token}"}), 401)
        app.post("/api/feedback", {"title": "t", "actual": ["python"]}, headers=anyone)
        assert last_source(database) == "iap:someone@example.com"
        assert app.get("/api/health").status == 200  # probes do not pass through IAP


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


def test_the_app_survives_a_database_restart_and_loses_no_acknowledged_feedback(
    served_model, postgres, tmp_path
):
    models, base = served_model
    url = postgres.database("restart")
    with app_server(
        f"--model-url=http://127.0.0.1:{models.port}",
        f"--feedback={url}",
        "--feedback-burst=100000",
        log_dir=tmp_path,
    ) as app:
        acknowledged, statuses, stop = [], [], threading.Event()

        def traffic() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                reply = app.post("/api/feedback", {"title": f"question {n}", "actual": ["python"]})
                statuses.append((time.monotonic(), reply.status))
                if reply.status == 201:
                    acknowledged.append(reply.json()["id"])
                else:
                    assert reply.status == 503 and "feedback store" in reply.json()["error"]
                time.sleep(0.01)

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            wait_for(lambda: len(acknowledged) > 20, 30)
            before = len(acknowledged)
            postgres.restart(down_s=2)
            back = time.monotonic()
            wait_for(lambda: any(t > back and s == 201 for t, s in statuses), 20)
            recovered = min(t for t, s in statuses if t > back and s == 201) - back
            wait_for(lambda: len(acknowledged) > before + 40, 30)
        finally:
            stop.set()
            sender.join(30)
        # Requests during the outage either waited for the pool to reconnect or got a 503
        # to retry; never a 500, and the process was not restarted.
        assert {s for _, s in statuses} <= {201, 503}
        assert recovered < 10, recovered
        assert app.process.poll() is None
        assert app.get("/api/ready").status == 200
        import psycopg

        with psycopg.connect(url) as db:
            stored = {row[0] for row in db.execute("SELECT id FROM feedback")}
        assert set(acknowledged) <= stored, set(acknowledged) - stored


def test_readiness_fails_while_the_database_is_down(served_model, postgres, tmp_path):
    models, base = served_model
    url = postgres.database("ready")
    with app_server(
        f"--model-url=http://127.0.0.1:{models.port}", f"--feedback={url}", log_dir=tmp_path
    ) as app:
        assert app.get("/api/ready").status == 200
        postgres.stop()
        try:
            assert "feedback store" in error_of(app.get("/api/ready"), 503)
        finally:
            postgres.start()
        wait_for(lambda: app.get("/api/ready").status == 200, 20)


def test_two_apps_adding_the_same_new_tag_at_once(served_model, postgres, tmp_path):
    models, base = served_model
    url = postgres.database("twoapps")
    common = (
        f"--model-url=http://127.0.0.1:{models.port}",
        f"--feedback={url}",
        "--feedback-burst=100000",
    )
    with app_server(*common, log_dir=tmp_path) as one, app_server(*common, log_dir=tmp_path) as two:
        barrier = threading.Barrier(16)
        statuses = []

        def post(n: int) -> None:
            barrier.wait(10)
            app = (one, two)[n % 2]
            reply = app.post("/api/feedback", {"title": f"zig question {n}", "actual": ["ziglang"]})
            statuses.append(reply.status)

        threads = [threading.Thread(target=post, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert statuses == [201] * 16
        store = Opened.at(url)
        try:
            rows, _ = store.review.page()
        finally:
            store.close()
        assert [(r["tag"], r["samples_waiting"]) for r in rows] == [("ziglang", 16)]


def test_the_rollout_command_acts_with_the_operators_token_and_no_other(stack, bearer):
    app, _ = stack
    url = f"http://127.0.0.1:{app.port}"

    def rollout(role: str, *args: str):
        token = bearer[role]["Authorization"].removeprefix("Bearer ")
        env = {**os.environ, "TAGGER_TOKEN": token, "TAGGER_APP_URL": url}
        return subprocess.run(
            [app_python(), "-m", "serving.rollout", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    status = rollout("operator", "status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["release"]["canary"] is None
    refused = rollout("reviewer", "rollback", "--reason", "try")
    assert refused.returncode != 0 and "403: this needs the operator role" in refused.stderr
    nothing = rollout("operator", "promote")
    assert nothing.returncode != 0 and "409: there is no canary to promote" in nothing.stderr
