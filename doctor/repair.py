"""The repair API under its earlier module name: plan.py plans, apply.py applies and undoes, fixflow.py
runs the --fix flow. New code imports from ``bdv2.doctor`` (or those modules) directly."""

from __future__ import annotations

from .apply import Journal, apply, installed, owned_files, run_command, undo
from .envfile import apply_env, shell_lines
from .fixflow import recheck, repaired_env
from .fixtypes import Plan, Recheck, RepairError, Step, StepStatus, Target, TargetKind
from .plan import plan

__all__ = ["Journal", "Plan", "Recheck", "RepairError", "Step", "StepStatus", "Target", "TargetKind", "apply",
           "apply_env", "installed", "owned_files", "plan", "recheck", "repaired_env", "run_command",
           "shell_lines", "undo"]
