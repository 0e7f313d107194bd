"""The app stack the API tests share: our TF Serving stand-in serving a real tagger, the
app in front of it on a real SQLite feedback file, and tokens for each role."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from contract import serving_layout
from serving.feedback import tokens
from tests.model_server_process import app_server, model_server
from tests.stores import make_token, sqlite_url


@pytest.fixture(scope="module")
def served_model(tmp_path_factory, tagger_model):
    """Our TF Serving stand-in serving a real tagger as version 7; (server, base path)."""
    root = tmp_path_factory.mktemp("models")
    base = root / "models" / "tagger"
    shutil.copytree(tagger_model, base / "7")
    publish_quality(base, "7", {"micro_f1_score": 0.6683, "micro_auc": 0.95})
    with model_server("--model_name=tagger", f"--model_base_path={base}", log_dir=root) as models:
        yield models, base


@pytest.fixture(scope="module")
def stack(tmp_path_factory, served_model):
    models, base = served_model
    root = tmp_path_factory.mktemp("app")
    database = root / "feedback.db"
    with app_server(
        f"--model-url=http://127.0.0.1:{models.port}",
        f"--feedback={database}",
        f"--model-base-path={base}",
        "--feedback-burst=10000",
        log_dir=root,
    ) as app:
        yield app, database


@pytest.fixture(scope="module")
def bearer(stack) -> dict[str, dict[str, str]]:
    """Authorization headers by role, for tokens made as an operator makes them."""
    _, database = stack
    url = sqlite_url(database)
    made = {role: make_token(url, f"test-{role}", role) for role in tokens.ISSUED_ROLES}
    return {role: {"Authorization": f"Bearer {token}"} for role, token in made.items()}


def publish_quality(base: Path, version: str, metrics: dict, pushed_at: float = 1.7e9) -> None:
    """A quality file as the Pusher writes it beside a version (pipeline/atomic_pusher.py)."""
    path = Path(serving_layout.quality_path(str(base), version))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": version, "pushed_at": pushed_at, "metrics": metrics}))


def stored_rows(database) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT id, title, actual, status FROM feedback ORDER BY id").fetchall()


def error_of(reply, status: int) -> str:
    assert reply.status == status, (reply.status, reply.body[:300])
    body = reply.json()
    assert list(body) == ["error"]
    return body["error"]
