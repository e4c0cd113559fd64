"""The matrix wing: compat_matrix.toml read and validated, its knowledge tables, and ``bdv2 matrix``.

``load.py`` reads rows, rules and signatures (the caller gives the names of the built-in checks) from the TOML
that ``shipped.py`` reads once (kept between runs in the doctor's cache, keyed on the file's bytes);
``knowledge.py`` the ``[knowledge.*]`` tables; ``verify.py`` installs a row in a fresh venv and checks it
(with ``selfsource.py`` finding where this bdv2 was installed from); ``cli.py`` is ``bdv2 matrix``.
"""

from .knowledge import Knowledge, default_knowledge, default_matrix_path
from .load import Condition, Matrix, Row, RowKind, Rule, Signature, Verified

__all__ = ["Condition", "Knowledge", "Matrix", "Row", "RowKind", "Rule", "Signature", "Verified",
           "default_knowledge", "default_matrix_path"]
