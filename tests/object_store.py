"""A filesystem with object-store semantics, plugged into TFX's fileio for tests.

Like Cloud Storage: objects are whole byte strings under flat names; a write becomes
visible all at once when it completes; a "directory" exists only while some object has
its name as a prefix; there is no rename. Every completed change is reported to the
registered observers with a snapshot of the names, so a test can check what a model
server polling the bucket could have listed at each moment.
"""

from __future__ import annotations

import fnmatch
import io
from collections.abc import Callable

from tfx.dsl.io import filesystem, filesystem_registry

SCHEME = "objstore://"


class ObjectStore(filesystem.Filesystem):
    SUPPORTED_SCHEMES = [SCHEME]
    objects: dict[str, bytes] = {}
    observers: list[Callable[[frozenset[str]], None]] = []
    fail_after_writes: int | None = None  # simulate a push that dies part way
    writes = 0

    @classmethod
    def reset(cls) -> None:
        cls.objects, cls.observers, cls.fail_after_writes, cls.writes = {}, [], None, 0

    @classmethod
    def _changed(cls) -> None:
        names = frozenset(cls.objects)
        for observe in cls.observers:
            observe(names)

    @classmethod
    def _put(cls, name: str, data: bytes) -> None:
        if cls.fail_after_writes is not None and cls.writes >= cls.fail_after_writes:
            raise OSError(f"simulated failure writing {name}")
        cls.writes += 1
        cls.objects[name] = data
        cls._changed()

    @staticmethod
    def open(name, mode: str = "r"):
        store = ObjectStore
        if "r" in mode:
            if name not in store.objects:
                raise FileNotFoundError(name)
            data = store.objects[name]
            return io.BytesIO(data) if "b" in mode else io.StringIO(data.decode())

        class Upload(io.BytesIO if "b" in mode else io.StringIO):
            def close(self) -> None:
                if self.closed:
                    return
                value = self.getvalue()
                super().close()  # closed either way: a failed upload is not retried
                store._put(name, value if isinstance(value, bytes) else value.encode())

        return Upload()

    @staticmethod
    def copy(src, dst, overwrite: bool = False) -> None:
        if not overwrite and dst in ObjectStore.objects:
            raise OSError(f"{dst} exists")
        ObjectStore._put(dst, ObjectStore.objects[src])

    @staticmethod
    def exists(path) -> bool:
        return path in ObjectStore.objects or ObjectStore.isdir(path)

    @staticmethod
    def glob(pattern):
        return sorted(n for n in ObjectStore.objects if fnmatch.fnmatch(n, pattern))

    @staticmethod
    def isdir(path) -> bool:
        prefix = path.rstrip("/") + "/"
        return any(n.startswith(prefix) for n in ObjectStore.objects)

    @staticmethod
    def listdir(path):
        prefix = path.rstrip("/") + "/"
        return sorted(
            {n[len(prefix) :].split("/")[0] for n in ObjectStore.objects if n.startswith(prefix)}
        )

    @staticmethod
    def makedirs(path) -> None:
        pass  # prefixes need no creating

    mkdir = makedirs

    @staticmethod
    def remove(path) -> None:
        del ObjectStore.objects[path]
        ObjectStore._changed()

    @staticmethod
    def rename(src, dst, overwrite: bool = False) -> None:
        raise OSError("an object store has no rename")

    @staticmethod
    def rmtree(path) -> None:
        prefix = path.rstrip("/") + "/"
        for name in [n for n in ObjectStore.objects if n.startswith(prefix)]:
            ObjectStore.remove(name)

    @staticmethod
    def stat(path):
        return len(ObjectStore.objects[path])

    @staticmethod
    def walk(top, topdown: bool = True, onerror=None):
        top = top.rstrip("/")
        children = ObjectStore.listdir(top)
        dirs = [c for c in children if ObjectStore.isdir(f"{top}/{c}")]
        files = [c for c in children if f"{top}/{c}" in ObjectStore.objects]
        yield top, dirs, files
        for d in dirs:
            yield from ObjectStore.walk(f"{top}/{d}")


filesystem_registry.DEFAULT_FILESYSTEM_REGISTRY.register(ObjectStore, priority=5)
