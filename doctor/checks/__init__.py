"""The checks wing: the registry of built-in checks and the rule modules that register them.

Data rules (``when``/``unless`` in compat_matrix.toml) are evaluated by ``eval_rule``; the built-in checks are
in ``rules.py`` (packages and metadata), ``pin_rules.py`` (TensorFlow's pins, fix commands tailored to the
stack), ``gpu_rules.py`` (CUDA libraries, driver, tools), ``ldpath_rules.py`` (LD_LIBRARY_PATH shadowing),
``env_rules.py`` (environment variables, the batch over the devices) and ``api_rules.py`` (``--deep``'s scan
of installed sources). Helpers they share live in ``_common.py``. Importing this package registers them all.
"""

from . import api_rules, env_rules, gpu_rules, ldpath_rules, pin_rules, rules
from ._common import PIP, eval_rule, in_spec
from .registry import CHECKS, Check, Options, check, registered
from .rules import INTERCHANGEABLE_GROUPS, provider

__all__ = ["CHECKS", "INTERCHANGEABLE_GROUPS", "PIP", "Check", "Options", "api_rules", "check", "env_rules",
           "eval_rule", "gpu_rules", "in_spec", "ldpath_rules", "pin_rules", "provider", "registered", "rules"]
