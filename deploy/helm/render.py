"""Render the chart offline with Helm's own engine (helm-python-sdk), and lint it.

    $TAGGER_TOOLS_PYTHON deploy/helm/render.py OUT_DIR [VALUES_FILE ...]

Writes OUT_DIR/manifests.yaml (every rendered document, as `helm template` prints them)
and exits non-zero with Helm's messages when lint finds an error. It runs under the
deployment tools' own Python (builder/deploy-tools.in), not the model's environment;
tests/test_deploy.py validates and scans what it writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import helm_python
import yaml

CHART = Path(__file__).resolve().parent / "so-tagger"
RELEASE, NAMESPACE = "so-tagger", "so-tagger"


def main(argv: list[str]) -> int:
    out, value_files = Path(argv[0]), [Path(v) for v in argv[1:]]
    values: dict = {}
    for path in value_files:  # later files win, key by key, as with `helm -f a -f b`
        values = merge(values, yaml.safe_load(path.read_text()) or {})
    report = helm_python.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    for m in problems:
        print(f"helm lint: {m.get('path')}: {m.get('error')}", file=sys.stderr)
    chart = helm_python.Chart.load(str(CHART))
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    documents = [
        f"# Source: {path}\n{text.strip()}\n"
        for path, text in sorted(rendered.items())
        if text.strip() and not path.endswith("NOTES.txt")
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifests.yaml").write_text("---\n".join(documents))
    return 1 if problems or report.get("errors") else 0


def merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
