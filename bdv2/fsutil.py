"""Atomic file writes: the one implementation every room uses.

A reader (or a resumed run) never sees half a file: data goes to a temporary file in the same folder,
which is renamed over the final name only once it is complete. A killed process leaves at most a
temporary file, never a file with the finished name. Stdlib only, so the doctor can use it; a URL
(``file://``, ``ram://``, a :class:`bdv2.paths.GPath`) is written through ``tf.io.gfile`` the same way; on an
object store (``gs://``, ``s3://``: bdv2.paths.OBJECT_STORES) the file is one put, which appears only whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .paths import AnyPath, GPath

TMP_SUFFIX = ".partial"

P = TypeVar("P", Path, GPath, AnyPath)


def tmp_path(final: P) -> P:
    """The fixed temporary name next to ``final`` used by :func:`atomic_output`."""
    return final.with_name(final.name + TMP_SUFFIX)


def write_atomic(path: AnyPath, data: bytes | str, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a unique temporary file in the same folder and rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    if isinstance(path, GPath) and path.object_store:  # one put: the object appears whole or not at all
        path.write_bytes(payload)
        return
    if isinstance(path, GPath):
        tmp_url = path.unique_sibling()
        try:
            tmp_url.write_bytes(payload)
            tmp_url.replace(path)
        except BaseException:
            tmp_url.unlink(missing_ok=True)
            raise
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: AnyPath, obj: Any, indent: int | None = 1, sort_keys: bool = True) -> None:
    """``json.dumps(obj)`` plus a newline, written with :func:`write_atomic`."""
    write_atomic(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


@contextmanager
def atomic_output(final: P) -> Iterator[P]:
    """Yield a temporary path next to ``final`` (``<final>.partial``); rename it to ``final`` only if the
    block completes. Writers that need a path (TFRecord writers, ``np.save``) use this form."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(final)
    try:
        yield tmp
        tmp.replace(str(final))
    finally:
        tmp.unlink(missing_ok=True)
