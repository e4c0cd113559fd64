"""The CPython versions each release of the stack's compiled packages has wheels for on PyPI (tensorflow-gpu 1.15.0:
3.5-3.7), read from wheel_pythons.json, built by tools/wheel_pythons/build.py from PyPI's JSON API
(https://docs.pypi.org/api/json/). Stdlib only."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

TABLE = Path(__file__).with_name("wheel_pythons.json")


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, tuple[str, str]]]:
    try:
        raw = json.loads(TABLE.read_text())
    except (OSError, ValueError):
        return {}
    return {p: {v: (r[0], r[1]) for v, r in rels.items()} for p, rels in raw.get("packages", {}).items()}


def _key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def wheel_pythons(package: str, version: str) -> tuple[str, str] | None:
    """(lowest, highest) CPython with a wheel of ``package`` ``version`` ("1.15" is 1.15.0, as pip reads ``==1.15``;
    "1.15.*" spans every 1.15 release), or None when the table does not have that release."""
    rels = _table().get(re.sub(r"[-_.]+", "-", package.lower()))
    if not rels or not re.fullmatch(r"\d{1,4}(?:\.\d{1,4}){0,2}(?:\.\*)?", version):
        return None
    if version.endswith(".*"):
        stem = version[:-2] + "."
        spans = [r for v, r in rels.items() if v.startswith(stem)]
        if not spans:
            return None
        return min((r[0] for r in spans), key=_key), max((r[1] for r in spans), key=_key)
    parts = version.split(".")
    padded = ".".join(parts + ["0"] * (3 - len(parts)))
    return rels.get(version) or rels.get(padded) or rels.get(".".join(parts[:2]) if len(parts) == 2 else "")
