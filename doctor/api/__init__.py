"""The API wing: which public names each release of jax and its ecosystem has.

``history.py`` reads the generated ``api_history.json.gz`` (built by tools/api_history/build.py from the
released wheels with ``scan.py``); ``advice.py`` turns "X lacks name N" into a sentence and a fix; ``deep.py``
scans the installed packages' sources for ``--deep``.
"""

from .advice import Advice, advise
from .history import History, load

__all__ = ["USES_PROBE", "Advice", "History", "advise", "load"]

USES_PROBE = "jax-api-uses"
"""The name of the ProbeResult of deep.py's scan (what ``checks/api_rules.py`` reads)."""
