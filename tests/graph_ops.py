"""Which ops a SavedModel's graph uses, and which of them stock TensorFlow lacks.

The stock tensorflow/serving image links TensorFlow's core ops only: a model that needs
an op library (tensorflow-text, for one) does not load there. The check runs in a fresh
interpreter that imports TensorFlow alone, so ops registered by this process's other
imports (modules.encoder registers tensorflow-text's) do not count as core.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tensorflow.core.protobuf import saved_model_pb2

_PROBE = """
import json, sys
from tensorflow.python.framework import op_def_registry
ops = json.load(sys.stdin)
print(json.dumps(sorted(op for op in ops if op_def_registry.get(op) is None)))
"""


def saved_model_ops(path: Path) -> set[str]:
    """Every op of every meta graph, the function library included."""
    model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    ops = set()
    for graph in model.meta_graphs:
        ops |= {node.op for node in graph.graph_def.node}
        for function in graph.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
    return ops


def not_in_core_tensorflow(ops: set[str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        input=json.dumps(sorted(ops)),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
