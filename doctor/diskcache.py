"""What the doctor derives from its own data files (the parsed compat_matrix.toml, the API history's answer for
installed releases), kept between runs in ``~/.cache/bdv2/doctor/`` (``$XDG_CACHE_HOME`` when set).

Each entry is keyed on the bytes it was derived from (a checksum of the data file, plus whatever else the value
depends on), so an edited file is read again, never answered from an older copy; a cache that cannot be read or
written costs only the time it would have saved. Values are plain data (marshal: no code runs on loading).
Stdlib only.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
import zlib
from pathlib import Path
from typing import Any

FORMAT = "1"
"""Bump when the meaning of a cached value changes without its source bytes changing."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bdv2" / "doctor"


def key(*parts: bytes | str) -> str:
    """A key for ``parts`` (the source bytes first): two checksums and the length of each part, with this cache
    format and the interpreter's marshal format."""
    out = [FORMAT, f"{sys.version_info[0]}.{sys.version_info[1]}", str(marshal.version)]
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        out.append(f"{len(data)}:{zlib.crc32(data):08x}:{zlib.adler32(data):08x}")
    return "/".join(out)


def get(name: str, k: str) -> Any:
    """The value stored as ``name`` under key ``k``; None when there is none (or another key's)."""
    try:
        with open(cache_dir() / f"{name}.marshal", "rb") as f:
            stored = marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(stored, tuple) or len(stored) != 2 or stored[0] != k:
        return None
    return stored[1]


def put(name: str, k: str, value: Any) -> None:
    """Store ``value`` as ``name`` under key ``k`` (replacing what was there); silently nothing when the cache
    folder cannot be written."""
    folder = cache_dir()
    tmp = folder / f"{name}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(marshal.dumps((k, value)))
        os.replace(tmp, folder / f"{name}.marshal")
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            tmp.unlink()
