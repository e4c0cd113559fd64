"""The ``[groups]`` of the shipped compat_matrix.toml, for the places that hold no loaded Matrix.

A group names the distributions that install the same import package (``tensorflow``, ``tensorflow-cpu``,
``tf-nightly``...). The matrix is the one owner of that list: a loaded ``Matrix`` carries it as
``Matrix.groups``, and the log readers, the probes, the repair moves and the reports read the shipped
matrix's copy through this module. Read once per process.
"""

from __future__ import annotations

from typing import Any

from ..probe.snapshot import normalise
from .shipped import shipped_toml

TENSORFLOW = "tensorflow"
TFP = "tfp"


def _shipped() -> dict[str, Any]:
    return shipped_toml()[0]


def shipped_groups() -> dict[str, tuple[str, ...]]:
    """Group name -> its distributions, in the matrix's order (the first is the group's own name)."""
    return {g: tuple(normalise(m) for m in names) for g, names in _shipped().get("groups", {}).items()}


def default_member(group: str) -> str:
    """The member of ``group`` that the matrix's default row installs (what ``bdv2[train]`` installs:
    ``tensorflow-cpu``), else the group's first member."""
    row: dict[str, Any] = next((r for r in _shipped().get("rows", []) if r.get("default")), {})
    installed = {normalise(name) for name in row.get("packages", {})}
    return next((m for m in members(group) if m in installed), members(group)[0])


def members(group: str) -> tuple[str, ...]:
    """The distributions of ``group`` in the shipped matrix (``members("tensorflow")``)."""
    return shipped_groups()[group]


def alternatives(dist: str) -> tuple[str, ...]:
    """The other distributions that install the same import package as ``dist`` (none outside a group)."""
    for names in shipped_groups().values():
        if dist in names:
            return tuple(n for n in names if n != dist)
    return ()


def canonical(dist: str) -> str:
    """The group's first member for any member (``tensorflow-cpu`` -> ``tensorflow``), else ``dist``."""
    return next((names[0] for names in shipped_groups().values() if dist in names), dist)
