"""python -m serving.request_log.export_protos: regenerate prediction_log.binpb.

Run in the pipeline environment, which has tensorflow-serving-api. The file is every
.proto that tensorflow_serving/apis/prediction_log.proto needs, as one FileDescriptorSet,
taken from the pinned package's generated modules; tests/test_request_log.py checks the
committed file is what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from serving.request_log import DESCRIPTORS


def descriptor_set() -> bytes:
    from tensorflow_serving.apis import prediction_log_pb2

    files: dict[str, object] = {}

    def add(file) -> None:  # dependencies first, as a pool must receive them
        if file.name in files:
            return
        for dependency in file.dependencies:
            add(dependency)
        files[file.name] = file

    add(prediction_log_pb2.DESCRIPTOR)
    result = descriptor_pb2.FileDescriptorSet()
    for file in files.values():
        result.file.add().MergeFromString(file.serialized_pb)
    return result.SerializeToString(deterministic=True)


def main() -> int:
    Path(DESCRIPTORS).write_bytes(descriptor_set())
    print(f"wrote {DESCRIPTORS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
