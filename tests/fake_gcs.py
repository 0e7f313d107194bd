"""google.cloud.storage's Client at the client boundary: objects in a dict by
"bucket/name", listed as Cloud Storage lists them. Plug it in with `install(monkeypatch)`."""

from __future__ import annotations

from google.api_core import exceptions

from store import objects


class FakeGcs:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def bucket(self, name: str):
        gcs = self

        class Blob:
            def __init__(self, blob_name: str) -> None:
                self.key = f"{name}/{blob_name}"

            def download_as_bytes(self, timeout: float) -> bytes:
                assert timeout > 0
                if self.key not in gcs.objects:
                    raise exceptions.NotFound(self.key)
                return gcs.objects[self.key]

            def upload_from_string(self, data: bytes, timeout: float) -> None:
                assert timeout > 0
                gcs.objects[self.key] = bytes(data)

            def delete(self, timeout: float) -> None:
                assert timeout > 0
                if gcs.objects.pop(self.key, None) is None:
                    raise exceptions.NotFound(self.key)

        class Bucket:
            def blob(self, blob_name: str) -> Blob:
                return Blob(blob_name)

        return Bucket()

    def list_blobs(self, bucket: str, prefix: str, delimiter: str, timeout: float):
        assert delimiter == "/" and timeout > 0

        class Page(list):
            prefixes: set[str] = set()

        page, prefixes = Page(), set()
        for key in sorted(self.objects):
            b, _, name = key.partition("/")
            if b != bucket or not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if "/" in rest:
                prefixes.add(prefix + rest.split("/", 1)[0] + "/")
            else:
                page.append(type("Blob", (), {"name": name})())
        page.prefixes = prefixes
        return page


def install(monkeypatch) -> FakeGcs:
    fake = FakeGcs()
    monkeypatch.setattr(objects, "client", lambda: fake)
    return fake
