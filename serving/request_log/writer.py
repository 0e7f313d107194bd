"""A sampled request log: records collected in memory and written as whole TFRecord
files, one per `max_bytes` or `max_seconds`, whichever comes first, under a local
directory or a gs:// prefix (store/objects.py). A file appears complete or not at all,
so a reader never meets half a record; a process that dies loses at most the file it was
collecting. Callers never wait for storage: records go through a bounded queue to one
writer thread, and a full queue drops the record and counts it.

File names sort by time: <name>-<UTC start>-<host>-<pid>-<sequence>.tfrecord.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Callable

from serving.request_log.tfrecord import frame
from store import objects

log = logging.getLogger(__name__)
DEFAULT_RATE = 0.1
MAX_BYTES = 16 << 20
MAX_SECONDS = 300.0
QUEUE_SIZE = 10_000
# A file that could not be written is kept and tried again until the records waiting
# reach this many times max_bytes; then they are dropped (and counted).
KEEP_FILES = 4
RETRY_S = 5.0
_STOP = object()


class RequestLog:
    def __init__(
        self,
        destination: str,
        rate: float = DEFAULT_RATE,
        max_bytes: int = MAX_BYTES,
        max_seconds: float = MAX_SECONDS,
        name: str = "prediction_log",
        queue_size: int = QUEUE_SIZE,
        draw: Callable[[], float] = random.random,
    ) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"the sampling rate is a share of requests, 0 to 1 (got {rate})")
        self.destination, self.rate, self.name = destination.rstrip("/"), rate, name
        self.max_bytes, self.max_seconds = max_bytes, max_seconds
        self.counts = {"written": 0, "dropped": 0}  # read by /metrics; see _count
        self._counts_lock = threading.Lock()
        self._draw = draw
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._origin = f"{socket.gethostname()}-{os.getpid()}"
        self._sequence = 0
        self._thread = threading.Thread(target=self._run, name="request_log", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        """Whether this request goes into the log (decide before building the record)."""
        return self.rate > 0 and self._draw() < self.rate

    def put(self, record: bytes) -> None:
        """Hands a serialized record to the writer thread without waiting."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._count("dropped", 1)

    def _count(self, outcome: str, n: int) -> None:
        with self._counts_lock:  # the caller's thread and the writer's both count
            self.counts[outcome] += n

    def close(self) -> None:
        """Writes what is collected and stops the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        buffer, records, opened, deadline = bytearray(), 0, 0.0, 0.0
        while True:
            timeout = max(0.0, deadline - time.time()) if buffer else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if isinstance(item, bytes):
                if not buffer:
                    opened = time.time()
                    deadline = opened + self.max_seconds
                buffer += frame(item)
                records += 1
            due = buffer and (
                item is _STOP or len(buffer) >= self.max_bytes or time.time() >= deadline
            )
            if due and self._write(buffer, opened):
                self._count("written", records)
                buffer, records = bytearray(), 0
            elif due and len(buffer) >= KEEP_FILES * self.max_bytes:
                log.error("request log: dropping %d records that could not be written", records)
                self._count("dropped", records)
                buffer, records = bytearray(), 0
            elif due:
                deadline = time.time() + RETRY_S
            if item is _STOP:
                return

    def _write(self, data: bytearray, opened: float) -> bool:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(opened))
        self._sequence += 1
        path = objects.join(
            self.destination, f"{self.name}-{stamp}-{self._origin}-{self._sequence:06d}.tfrecord"
        )
        try:
            objects.write(path, bytes(data))
        except Exception:  # noqa: BLE001 - storage may be down; the records are kept
            log.warning("request log: could not write %s; will retry", path, exc_info=True)
            return False
        return True
