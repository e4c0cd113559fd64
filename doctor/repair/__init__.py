"""The repair wing: findings turned into a Plan, applied with --fix, undone with --undo.

``model.py`` holds the types (Plan, Step, Target, ...); ``envfile.py`` the environment edits and the shell
file that carries them. ``plan.py`` decides, ``pipmove.py`` checks version moves with the installer's resolver
(``installer.py``: pip, uv or conda), ``apply.py`` applies and records them for ``--undo``, and ``flow.py``
runs the whole ``--fix`` sequence. Those load only when a repair runs: import them by their module path.
"""

from .envfile import apply_env, describe_op, merge_flags, shell_lines
from .model import Plan, Recheck, RepairError, Step, StepStatus, Target, TargetKind

__all__ = ["Plan", "Recheck", "RepairError", "Step", "StepStatus", "Target", "TargetKind", "apply_env",
           "describe_op", "merge_flags", "shell_lines"]
