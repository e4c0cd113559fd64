"""The logs wing: a log or traceback turned into findings (``bdv2 doctor --log FILE``, a failed training run).

``signatures.py`` normalises the text, matches the matrix's signatures and ranks what it finds;
``tracebacks.py`` reads Python tracebacks as structure, ``resolver.py`` pip/uv/poetry/conda refusals, and
``loader.py`` dynamic-loader traces (LD_DEBUG, ldd).
"""

from .signatures import diagnose_log, match_text

__all__ = ["diagnose_log", "match_text"]
