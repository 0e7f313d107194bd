"""The model config TF Serving polls (`--model_config_file` with
`--model_config_file_poll_wait_seconds`), generated from the release:

    model_config_list {
      config {
        name: "tagger"
        base_path: "gs://.../serving/tagger"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 7 versions: 8 } }
        version_labels { key: "stable" value: 7 }
        version_labels { key: "canary" value: 8 }
      }
    }

Only the versions listed are loaded, so a newly pushed version serves nothing until the
controller names it. TF Serving refuses a label for a version that is not loaded yet, so
a new canary is first listed, and labelled once the server reports it AVAILABLE. There is
never a logging_config: the stock tensorflow_model_server refuses one.
"""

from __future__ import annotations

import json

from store import objects


def render(name: str, base_path: str, versions: set[str], labels: dict[str, str]) -> str:
    quoted = json.dumps  # a JSON string is a valid text-format string
    lines = [
        "model_config_list {",
        "  config {",
        f"    name: {quoted(name)}",
        f"    base_path: {quoted(base_path)}",
        '    model_platform: "tensorflow"',
        "    model_version_policy { specific { "
        + " ".join(f"versions: {int(v)}" for v in sorted(versions, key=int))
        + " } }",
    ]
    lines += [
        f"    version_labels {{ key: {quoted(label)} value: {int(version)} }}"
        for label, version in sorted(labels.items())
    ]
    return "\n".join([*lines, "  }", "}", ""])


def write_if_changed(path: str, text: str) -> bool:
    if objects.read(path) == text.encode():
        return False
    objects.write(path, text.encode())
    return True
