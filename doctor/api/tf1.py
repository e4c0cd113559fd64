"""TensorFlow 1.x names that TensorFlow 2 no longer has under ``tf.``, and where each lives now.

Read from tf1_names.json, built by tools/tf1_names/build.py from TensorFlow's own upgrade tables
(https://www.tensorflow.org/guide/migrate/upgrade) and checked against the first TensorFlow 2 release's API.
Stdlib only.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).with_name("tf1_names.json")
SOURCE = "https://www.tensorflow.org/guide/migrate/upgrade"
# How a log spells the tf namespace: the package, its generated API modules, the v2 compat alias.
_PREFIX = re.compile(r"^(?:tensorflow(?:_core)?(?:\._api\.v[12](?:\.v[12])?|\.compat\.v2)?|tf)(?=\.|$)")


@dataclass(frozen=True)
class Tf1Name:
    key: str
    """The name as TensorFlow 1.x code wrote it (``tf.Session``)."""
    now: str | None
    """Where TensorFlow 2 keeps it (``tf.compat.v1.Session``), None for a namespace that was not carried over."""


@functools.lru_cache(maxsize=1)
def _table() -> tuple[dict[str, str], tuple[str, ...]]:
    try:
        raw = json.loads(TABLE.read_text())
    except (OSError, ValueError):
        return {}, ()
    return dict(raw.get("renames", {})), tuple(raw.get("removed_modules", ()))


def tf1_name(asked: str) -> Tf1Name | None:
    """``asked`` (``tensorflow.Session``, ``tensorflow._api.v2.train.AdamOptimizer``, ``tf.contrib.slim``) when it
    is a TensorFlow 1.x name that TensorFlow 2's API lacks."""
    m = _PREFIX.match(asked)
    if not m:
        return None
    key = "tf" + asked[m.end():]
    renames, modules = _table()
    if key in renames:
        return Tf1Name(key, renames[key])
    parent = next((p for p in sorted(modules, key=len, reverse=True) if key == p or key.startswith(p + ".")), None)
    if parent is None:
        return None
    if key != parent:
        return Tf1Name(key, None)
    moved = Counter(renames[k].rsplit(".", 1)[0] for k in renames if k.startswith(parent + "."))
    return Tf1Name(key, moved.most_common(1)[0][0] if moved else None)  # tf.logging -> tf.compat.v1.logging
