"""TensorFlow's in-memory file system (``ram://``), for tests of the one path layer (bdv2/paths.py): it lives
inside one process, so only in-process readers and writers can be tested on it."""

from __future__ import annotations

import uuid
from pathlib import Path

import tensorflow as tf


def to_ram(local: Path) -> str:
    """A copy of the folder ``local`` in TensorFlow's in-memory file system; its URL."""
    url = f"ram://bdv2-{uuid.uuid4().hex[:8]}"
    for f in local.rglob("*"):
        if f.is_file():
            dest = f"{url}/{f.relative_to(local).as_posix()}"
            tf.io.gfile.makedirs(dest.rsplit("/", 1)[0])
            tf.io.gfile.copy(str(f), dest)
    return url
