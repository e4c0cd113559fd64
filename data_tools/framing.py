"""TFRecord files read by their framing alone, without TensorFlow: each record is its length (u64), a CRC of
the length (u32), the payload and a CRC of the payload (u32). Counting records seeks past payloads, so a
100 MB shard is counted in a few reads; a file that ends inside a record is a truncated download.
(Format: https://www.tensorflow.org/tutorials/load_data/tfrecord#tfrecords_format_details; CRCs not checked.)
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Iterator
from pathlib import Path

from .errors import DataToolsError


def iter_records(path: Path, payload: bool = True) -> Iterator[bytes | int]:
    """Each record's payload (or, with payload=False, its length, skipping the bytes).

    Raises:
        DataToolsError: the file ends inside a record (a truncated download).
    """
    size = path.stat().st_size
    with path.open("rb") as f:  # a local file or a URL (bdv2.paths)
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise DataToolsError(f"{path}: ends inside a record header at byte {f.tell() - len(header)}")
            (length,) = struct.unpack("<Q", header[:8])
            if f.tell() + length + 4 > size:
                raise DataToolsError(f"{path}: a record of {length} bytes runs past the end of the file "
                                     f"({size} bytes): truncated")
            if payload:
                yield f.read(length)
                f.seek(4, io.SEEK_CUR)
            else:
                f.seek(length + 4, io.SEEK_CUR)
                yield length


def count_records(path: Path) -> int:
    return sum(1 for _ in iter_records(path, payload=False))


def first_record_sha256(path: Path) -> str | None:
    for record in iter_records(path):
        assert isinstance(record, bytes)
        return hashlib.sha256(record).hexdigest()
    return None
