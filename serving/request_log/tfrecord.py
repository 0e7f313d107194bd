"""TFRecord framing, as tf.io.TFRecordWriter writes it, without TensorFlow.

Each record: its length as a little-endian uint64, the masked CRC-32C of those 8 bytes,
the data, the masked CRC-32C of the data (tensorflow/core/lib/io/record_writer.cc).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF)


def frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + _masked_crc(length) + data + _masked_crc(data)


class CorruptRecordError(ValueError):
    """The bytes are not whole TFRecords: truncated, or a checksum does not match."""


def records(data: bytes) -> Iterator[bytes]:
    """The records of a TFRecord file's bytes, each checked against its checksums."""
    at = 0
    while at < len(data):
        header = data[at : at + 12]
        if len(header) < 12 or _masked_crc(header[:8]) != header[8:]:
            raise CorruptRecordError(f"bad record header at byte {at}")
        (length,) = struct.unpack("<Q", header[:8])
        body = data[at + 12 : at + 12 + length]
        if len(body) < length or _masked_crc(body) != data[at + 12 + length : at + 16 + length]:
            raise CorruptRecordError(f"bad record of {length} bytes at byte {at}")
        yield body
        at += 16 + length
