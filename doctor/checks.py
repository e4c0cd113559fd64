"""The registry of built-in checks: the one list of the names `check = "..."` in compat_matrix.toml may use.

A built-in check is a rule whose logic needs code; its words (title, reason, source, fix) still live in
the matrix. rules.py, gpu_rules.py, ldpath_rules.py, env_rules.py and pin_rules.py register theirs with
``@check("name")``; the matrix loader accepts exactly the registered names (tests/doctor/test_matrix.py
checks that every registered check is used and every used one is registered).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .findings import Finding
    from .matrix import Matrix, Rule
    from .snapshot import Snapshot


@dataclass(frozen=True)
class Options:
    """What the user asked for on this run, as opposed to facts about the environment (never saved in a snapshot)."""

    batch_size: int | None = None
    """The training batch, checked against the devices the process will see (--batch-size)."""


Check = Callable[["Rule", "Snapshot", "Matrix", Options], "list[Finding]"]

CHECKS: dict[str, Check] = {}
RULE_MODULES = ("rules", "gpu_rules", "ldpath_rules", "env_rules", "pin_rules")
"""The modules that register built-in checks."""


def check(name: str) -> Callable[[Check], Check]:
    """Register the decorated function as the built-in check ``name``."""

    def register(fn: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"built-in check {name!r} registered twice")
        CHECKS[name] = fn
        return fn

    return register


def registered() -> dict[str, Check]:
    """Every built-in check, by name (importing the rule modules registers them)."""
    for module in RULE_MODULES:
        importlib.import_module(f"{__package__}.{module}")
    return CHECKS
