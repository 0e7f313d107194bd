"""Hostile clients against the app and the model server, as they were tried from outside.

    make bench-hostile      (after `make`; serves the newest version in build/serving/tagger)

Starts the model server and the app (default settings, a fresh SQLite store) on loopback
and replays each attack; prints what the attack got before (as it was reported against
`make up`) beside what it gets now. Nothing here is a pass/fail test: tests/ holds those.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from contract import paths, serving_layout
from serving.feedback import tokens
from store import retrain
from store.database import Database
from tests.model_server_process import app_server, model_server


def post(port: int, path: str, body, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, data, {"Content-Type": "application/json", **(headers or {})})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def client(n: int) -> dict[str, str]:
    """The header the trusted proxy adds for client n (each attack is its own client)."""
    return {"X-Forwarded-For": f"203.0.113.{n}"}


def flood(port: int) -> str:
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        statuses = list(
            pool.map(
                lambda i: post(
                    port,
                    "/api/feedback",
                    {"title": f"sort a list in python {i}", "actual": ["python"]},
                    client(1),
                )[0],
                range(1000),
            )
        )
    seconds = time.monotonic() - started
    return (
        f"{statuses.count(201)} stored, {statuses.count(429)} refused 429 in {seconds:.1f} s; "
        f"at --every 100 one batch takes "
        f"{retrain.source_cap(100, retrain.SOURCE_SHARE)} of them"
    )


def main() -> int:
    base = paths.serving_model_dir()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        database = tmp / "feedback.db"
        db = Database(f"sqlite:///{database}")
        reviewer = {"Authorization": f"Bearer {tokens.create(db, 'bench', 'reviewer')}"}
        db.close()
        with (
            model_server(
                f"--model_name={serving_layout.MODEL_NAME}",
                f"--model_base_path={base}",
                "--monitoring_config_file=deploy/serving/monitoring.config",
                log_dir=tmp,
            ) as models,
            app_server(
                f"--model-url=http://127.0.0.1:{models.port}",
                f"--feedback={database}",
                f"--model-base-path={base}",
                "--trusted-proxy=127.0.0.1/32",
                log_dir=tmp,
            ) as app,
        ):
            port = app.port
            post(port, "/api/feedback", {"title": "t", "actual": ["quuxbar"]}, client(9))
            status, _ = post(port, "/api/review/tags/quuxbar:accept", {})
            rows.append(("anonymous review accept", "200", f"{status}"))
            rows.append(
                ("1,000 feedback posts from one client", "1,000 accepted in 0.8 s", flood(port))
            )
            # 50 identical posts with a new tag (another client), then one accept.
            same = [
                post(
                    port,
                    "/api/feedback",
                    {"title": "Lifetimes in rust", "actual": ["rustlang"]},
                    client(2),
                )[0]
                for _ in range(50)
            ]
            post(port, "/api/review/tags/rustlang:accept", {"alias_of": "c++"}, reviewer)
            with sqlite3.connect(database) as db:
                (trainable,) = db.execute(
                    "SELECT COUNT(*) FROM feedback WHERE title = 'Lifetimes in rust' "
                    "AND status = 'accepted'"
                ).fetchone()
            rows.append(
                (
                    "50 identical posts with a new tag, one accept",
                    "50 training rows",
                    f"{trainable} training row ({same.count(201)} stored, "
                    f"{same.count(429)} refused 429)",
                )
            )
            junk = client(3)
            codes = [
                post(
                    port,
                    "/api/feedback",
                    {"title": f"junk {i}", "actual": [f"j{i}x{k}" for k in range(5)]},
                    junk,
                )[0]
                for i in range(200)
            ]
            with sqlite3.connect(database) as db:
                (queued,) = db.execute(
                    "SELECT COUNT(*) FROM tag_review WHERE tag LIKE 'j%x%'"
                ).fetchone()
            rows.append(
                (
                    "200 posts of 5 junk tags each",
                    "1,000 tags queued, no paging",
                    f"{queued} tags queued, {codes.count(429)} posts refused 429; paged",
                )
            )
            # As a reviewer's browser would send it behind IAP (its cookie rides along).
            form = {"Content-Type": "application/x-www-form-urlencoded", **reviewer}
            status, _ = post(port, "/api/review/tags/quuxbar:reject", b"", form)
            marked, _ = post(
                port,
                "/api/review/tags/quuxbar:reject",
                b"",
                {**form, "Sec-Fetch-Site": "cross-site"},
            )
            rows.append(
                (
                    "cross-site <form> POST, no body",
                    "200 (decided)",
                    f"{status} (not JSON); {marked} when the browser marks it cross-site",
                )
            )
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/")
            reply = conn.getresponse()
            reply.read()
            headers = dict(reply.getheaders())
            conn.close()
            rows.append(
                (
                    "security headers on /",
                    "none; Server: aiohttp/...",
                    f"CSP {'script-src' in headers.get('Content-Security-Policy', '')}, "
                    f"nosniff, HSTS; Server: {headers.get('Server')}",
                )
            )
            body = json.dumps({"title": "How to merge two dicts in python"}).encode()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(
                    b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/json\r\nConnection: close\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body[:12]
                )
                time.sleep(0.3)
                sock.sendall(body[12:])
                answer = b"".join(iter(lambda: sock.recv(65536), b""))
            rows.append(
                (
                    "a body sent in two writes 300 ms apart",
                    "400 Unterminated string",
                    answer.split(b"\r\n", 1)[0].decode(),
                )
            )
            slow = []
            for _ in range(20):
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\n")
                slow.append(sock)
            started, open_ = time.monotonic(), set(range(20))
            while open_ and time.monotonic() - started < 45:
                for n in list(open_):
                    try:
                        slow[n].sendall(b"X")
                        slow[n].setblocking(False)
                        if slow[n].recv(1) == b"":
                            open_.discard(n)
                    except BlockingIOError:
                        pass
                    except OSError:
                        open_.discard(n)
                    finally:
                        slow[n].setblocking(True)
                time.sleep(0.5)
            for sock in slow:
                sock.close()
            waited = time.monotonic() - started
            rows.append(
                (
                    "20 clients sending headers slowly",
                    "all open after 45 s",
                    f"{20 - len(open_)} closed after {waited:.0f} s",
                )
            )
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/metrics")
            public = conn.getresponse().status
            conn.close()
            rows.append(("/metrics on the public port", "200", f"{public}"))
            metrics_path = "/monitoring/prometheus/metrics"
            size = len(models.get(metrics_path).body)
            for i in range(300):
                models.request("POST", f"/v1/models/bogus{i}:predict", {"instances": ["x"]})
            grown = len(models.get(metrics_path).body)
            rows.append(
                (
                    "300 made-up model names",
                    "metrics 5 KB -> 1.29 MB",
                    f"metrics {size / 1024:.0f} KB -> {grown / 1024:.0f} KB",
                )
            )
            process = psutil.Process(models.process.pid)
            before = process.memory_info().rss
            started = time.monotonic()
            many = {"instances": ["python list"] * 200_000}
            reply = models.request(
                "POST", f"/v1/models/{serving_layout.MODEL_NAME}:predict", many, timeout=120
            )
            rows.append(
                (
                    "200,000 titles in one request",
                    "504 at 30 s, 1.5 -> 4.8 GB",
                    f"{reply.status} in {time.monotonic() - started:.1f} s, "
                    f"{before / 2**30:.1f} -> "
                    f"{process.memory_info().rss / 2**30:.1f} GB",
                )
            )
    width = max(len(r[0]) for r in rows)
    print(f"{'attack':<{width}}  {'before (reported)':<32}  now")
    for attack, before, now in rows:
        print(f"{attack:<{width}}  {before:<32}  {now}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
