"""Names a package face offers but imports only on first use (PEP 562's module ``__getattr__``), so a plain
check does not load the wings it never runs. Stdlib only."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, modules: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name in ``modules`` is read from its (relative) module on
    first use and kept in ``namespace``, so the next use is a plain global."""

    def __getattr__(name: str) -> Any:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(modules[name], package), name)
        namespace[name] = value
        return value

    return __getattr__
