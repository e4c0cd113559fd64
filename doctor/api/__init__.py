"""The API wing: which public names each release of jax and its ecosystem has.

``history.py`` reads the generated ``api_history.json.gz`` (built by tools/api_history/build.py from the
released wheels with ``scan.py``); ``advice.py`` turns "X lacks name N" into a sentence and a fix; ``deep.py``
scans the installed packages' sources for ``--deep``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

if TYPE_CHECKING:
    from .advice import Advice, advise
    from .history import History, load

__all__ = ["USES_PROBE", "Advice", "History", "advise", "load"]

_LAZY = {"Advice": ".advice", "advise": ".advice", "History": ".history", "load": ".history"}
"""Imported on first use: a plain check asks the history only through recorded.py's cache."""


__getattr__ = lazy_names(__name__, _LAZY, globals())

USES_PROBE = "jax-api-uses"
"""The name of the ProbeResult of deep.py's scan (what ``checks/api_rules.py`` reads)."""
