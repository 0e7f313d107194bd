"""The import rules of docs/imports.md, checked on every import statement of the project."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from tests.commands import REPO, app_python, run_module

PROJECT = (
    "contract", "store", "modules", "ingest", "pipeline", "learning", "serving", "monitoring",
)  # fmt: skip
RUNNERS = ("local_runner", "vertex_runner")
# Part (a path prefix, most specific first) -> what of the project it may import.
# docs/imports.md says the same in words; a test below keeps its rows and these in step.
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("contract/",             ("contract",)),
    ("store/",                ("contract", "store")),
    ("modules/",              ("contract", "modules")),
    ("ingest/",               ("contract", "ingest")),
    ("pipeline/",             ("contract", "modules", "ingest", "pipeline")),
    ("learning/",             ("contract", "store", "ingest", "pipeline", "learning")),
    ("monitoring/",           ("contract", "modules", "ingest", "monitoring")),
    ("serving/prometheus.py", ()),
    ("serving/smoke.py",      ()),
    ("serving/request_log/",  ("contract", "store", "serving.request_log")),
    ("serving/rollout/",      ("contract", "store", "serving.prometheus", "serving.rollout")),
    ("serving/model_server/", ("contract", "serving.prometheus", "serving.request_log",
                               "serving.model_server")),
    ("serving/feedback/",     ("contract", "store", "serving.feedback")),
    ("serving/app/",          ("contract", "store", "serving.feedback", "serving.prometheus",
                               "serving.request_log", "serving.rollout", "serving.app")),
    ("serving/up.py",         ("contract",)),
    ("serving/__init__.py",   ()),
]  # fmt: skip
# Never, whatever the rule above allows.
FORBIDDEN = {"learning/": ("pipeline.pipeline",)}
# The app and the feedback store run without the training stack.
TRAINING_STACK = (
    "tensorflow",
    "tfx",
    "tfx_bsl",
    "tensorflow_transform",
    "ml_metadata",
    "tensorflow_model_analysis",
    "tensorflow_data_validation",
    "apache_beam",
    "keras",
    "keras_tuner",
    "sklearn",
    "numpy",
    "kfp",
)
SLIM = (
    "store/",
    "serving/app/",
    "serving/feedback/",
    "serving/prometheus.py",
    "contract/",
    "serving/rollout/",
    "serving/request_log/",
)


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every import; `from a import b` is a.b."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def project_files() -> list[Path]:
    files = [REPO / f"{r}.py" for r in RUNNERS]
    for part in PROJECT + ("bench", "tests"):
        files += sorted((REPO / part).rglob("*.py"))
    return files


def violations(path: str, source: str) -> list[str]:
    """What in this file breaks the rules, as 'file:line imports name (reason)'."""
    rule = next((allowed for prefix, allowed in RULES if path.startswith(prefix)), None)
    forbidden = next((f for prefix, f in FORBIDDEN.items() if path.startswith(prefix)), ())
    slim = path.startswith(SLIM)
    found = []
    for line, name in imported(ast.parse(source)):
        where = f"{path}:{line} imports {name}"
        top = name.split(".")[0]
        if top in RUNNERS and not path.startswith(("tests/", "bench/")):
            found.append(f"{where} (nothing in the product imports a runner)")
        if rule is not None and top in PROJECT and not within(name, rule):
            found.append(f"{where} (allowed: {', '.join(rule) or 'nothing'})")
        if within(name, forbidden):
            found.append(f"{where} (forbidden here)")
        if slim and top in TRAINING_STACK:
            found.append(f"{where} (the app and the feedback store run without it)")
        if path.startswith("contract/") and top not in sys.stdlib_module_names | {"contract"}:
            found.append(f"{where} (the contract uses the standard library only)")
    return found


def test_every_part_imports_only_what_its_rule_allows():
    broken = []
    for file in project_files():
        path = str(file.relative_to(REPO))
        broken += violations(path, file.read_text())
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("path", "source", "reason"),
    [
        ("serving/app/api.py", "from pipeline import metadata", "allowed: contract"),
        ("serving/app/api.py", "def f():\n    import tensorflow as tf", "without it"),
        ("serving/model_server/app.py", "from modules import trainer", "allowed: contract"),
        # Stock TF Serving loads core ops only; so does the model server.
        ("serving/model_server/servable.py", "from modules.encoder import x", "allowed: contract"),
        ("store/feedback.py", "from serving.app import api", "allowed: contract, store"),
        ("learning/worker.py", "from serving.feedback import tokens", "allowed: contract, store"),
        ("modules/trainer.py", "from pipeline import configs", "allowed: contract, modules"),
        ("ingest/spans.py", "from pipeline.paths import x", "allowed: contract, ingest"),
        ("learning/worker.py", "from pipeline.pipeline import create_pipeline", "forbidden"),
        ("pipeline/lineage.py", "import local_runner", "imports a runner"),
        ("contract/paths.py", "import yaml", "standard library only"),
    ],
)
def test_a_breaking_import_is_named_with_its_rule(path, source, reason):
    (found,) = violations(path, source)
    assert found.startswith(f"{path}:") and reason in found


def test_allowed_imports_are_not_flagged():
    assert violations("serving/model_server/servable.py", "from serving.request_log import x") == []
    assert violations("learning/worker.py", "from pipeline import metadata") == []
    assert violations("learning/span_store.py", "from store import objects") == []
    assert violations("tests/test_vertex.py", "import vertex_runner") == []


def test_the_documented_rules_name_every_part_the_test_checks():
    """docs/imports.md's table has a row for each part of RULES, and no other."""
    table = (REPO / "docs" / "imports.md").read_text().split("| part |", 1)[1]
    documented = set()
    for row in table.splitlines()[2:]:
        if not row.startswith("|"):
            break
        documented |= set(re.findall(r"`([^`]+)`", row.split("|")[1]))
    checked = {prefix for prefix, _ in RULES} - {"serving/__init__.py"}
    assert documented - {"local_runner.py", "vertex_runner.py", "bench/", "tests/"} == checked


def test_the_app_and_the_feedback_cli_run_from_their_own_lock_without_the_training_stack():
    """What the app image holds: serving/requirements.lock's virtualenv and the online code."""
    probe = (
        "import sys, serving.app.__main__, serving.feedback.__main__, serving.rollout.__main__\n"
        f"heavy = {TRAINING_STACK + ('pipeline', 'modules', 'ingest', 'learning')!r}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    loaded = run_module("-c", probe, python=app_python()).stdout.strip()
    assert loaded == "[]"
    missing = run_module("-c", "import tensorflow", python=app_python(), check=False)
    assert missing.returncode == 1 and "No module named 'tensorflow'" in missing.stderr
    usage = run_module("-m", "serving.feedback", "--help", python=app_python()).stdout
    assert "review queue" in usage
