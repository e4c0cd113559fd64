"""The registry of built-in checks: the one list of the names `check = "..."` in compat_matrix.toml may use.

A built-in check is a rule whose logic needs code; its words (title, reason, source, fix) still live in
the matrix. The rule modules of this wing register theirs with ``@check("name")``; the wing's face imports
them all, so the registry is full once ``bdv2.doctor.checks`` is imported. The matrix loader is given
exactly the registered names by its caller (tests/doctor/test_matrix.py checks that every registered check
is used and every used one is registered).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..findings import Finding
    from ..matrix.load import Matrix, Rule
    from ..probe.snapshot import Snapshot


@dataclass(frozen=True)
class Options:
    """What the user asked for on this run, as opposed to facts about the environment (never saved in a snapshot)."""

    batch_size: int | None = None
    """The training batch, checked against the devices the process will see (--batch-size)."""


Check = Callable[["Rule", "Snapshot", "Matrix", Options], "list[Finding]"]

CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    """Register the decorated function as the built-in check ``name``."""

    def register(fn: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"built-in check {name!r} registered twice")
        CHECKS[name] = fn
        return fn

    return register


def registered() -> dict[str, Check]:
    """Every built-in check, by name (the wing's face imports every rule module, which registers them)."""
    return CHECKS
