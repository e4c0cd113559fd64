"""The Keras 1 keyword arguments that Keras 2.0 renamed (``nb_epoch`` -> ``epochs``, ``border_mode`` -> ``padding``).

Read from keras1_names.json, built by tools/keras1_names/build.py from Keras 2's own translation layer, which
accepted the old names with a warning until multi-backend Keras ended; tf.keras and Keras 3 never accepted them
(https://github.com/keras-team/keras/releases/tag/2.0.0). Stdlib only.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

TABLE = Path(__file__).with_name("keras1_names.json")
SOURCE = "https://github.com/keras-team/keras/releases/tag/2.0.0"
# Keras 1 names that other libraries also use as keywords: only read as Keras 1 where the log speaks of Keras.
GENERIC = frozenset({"init", "bias", "input", "output", "p", "length", "stride", "sigma", "output_dim"})


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, tuple[str, ...]]:
    try:
        raw = json.loads(TABLE.read_text())
    except (OSError, ValueError):
        return {}
    return {k: tuple(v) for k, v in raw.get("keywords", {}).items()}


def keras1_keyword(keyword: str, keras_in_sight: bool) -> tuple[str, ...] | None:
    """The Keras 2 names of a Keras 1 keyword (None when it is not one, or is a common word and Keras is not in
    sight)."""
    new = _table().get(keyword)
    if not new or (keyword in GENERIC and not keras_in_sight):
        return None
    return new
