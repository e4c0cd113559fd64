"""The logs wing: a log or traceback turned into findings (``bdv2 doctor --log FILE``, a failed training run).

``normalise.py`` puts the text into one shape (prefixes, wrapping, bounded lines) and reads versions in every
encoding; ``signatures.py`` matches the matrix's signatures and ranks what it finds; ``families.py`` scores the
causes of ``doctor/log_families.toml`` (weighted cues, facts, one fix template each); ``tracebacks.py`` reads
Python tracebacks as structure and names the caller, ``resolver.py`` pip/uv/poetry/conda refusals and the
installed-set checks packages state, and ``loader.py`` dynamic-loader traces (LD_DEBUG, ldd).
"""

from .signatures import diagnose_log, match_text

__all__ = ["diagnose_log", "match_text"]
