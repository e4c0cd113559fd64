"""The compat_matrix.toml shipped with bdv2, as TOML data: parsed once per process, and between runs kept in the
doctor's cache (diskcache.py) keyed on the file's bytes, for the loader (load.py), the ``[groups]`` reader
(groups.py) and the default knowledge (knowledge.py)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .. import diskcache


def default_matrix_path() -> Path:
    """The matrix beside the doctor's ``__init__`` (package data, in the wheel and in an editable install)."""
    return Path(__file__).parent.parent / "compat_matrix.toml"


@functools.cache
def shipped_toml() -> tuple[dict[str, Any], str]:
    """(the shipped matrix's TOML data, its cache key); OSError and tomllib.TOMLDecodeError pass through."""
    text = default_matrix_path().read_text()
    k = diskcache.key(text)
    raw = diskcache.get("matrix", k)
    if not isinstance(raw, dict):
        import tomllib

        raw = tomllib.loads(text)
        diskcache.put("matrix", k, raw)
    return raw, k
