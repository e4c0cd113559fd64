"""bdv2.doctor: probe a JAX/TF/CUDA environment, check it against compat_matrix.toml, report and repair.

Public API (used by `bdv2 doctor`/`bdv2 run` and by the trainer's preflight and child environments):
    examine(...)                      -> Examination  (snapshot + findings + timings)
    diagnose(snap, matrix, options)   -> [Finding]
    diagnose_log(text, matrix)        -> [Finding]
    plan_repair(findings, snap, matrix) -> Plan       (env_ops: what `bdv2 run` gives its child)
    repaired_env(matrix, python)      -> dict         (os.environ with the plan's env edits)
    apply_env(ops, environ), merge_flags(current, add), shell_lines(ops), describe_op(op)
    extra_distributions()             -> dict         (module -> the distribution bdv2's extras install for it)

The wings (probe/, checks/, logs/, repair/, api/, matrix/) load when their work runs: importing this package
loads what a plain check needs, and diagnose_log, plan_repair, repaired_env, examine(deep=True) and the repair
wing's names (Plan, apply_env, ...) import the log readers, the repair flow and the runtime probes on first use.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .checks.registry import Options
from .diagnose import diagnose, load_matrix, nearest_row
from .findings import Area, EnvOp, EnvOpKind, Finding, Fix, Severity, exit_code
from .lazy import lazy_names
from .matrix.load import Matrix
from .probe.collect import collect
from .probe.snapshot import ProbeStatus, Snapshot

if TYPE_CHECKING:
    from .repair.envfile import apply_env, describe_op, merge_flags, shell_lines
    from .repair.model import Plan, Recheck, RepairError, Step, StepStatus, Target, TargetKind

__all__ = [
    "Area", "EnvOp", "EnvOpKind", "Examination", "Finding", "Fix", "Matrix", "Options", "Plan", "ProbeStatus",
    "Recheck", "RepairError", "Severity", "Snapshot", "Step", "StepStatus", "Target", "TargetKind", "apply_env",
    "collect", "describe_op", "diagnose", "diagnose_log", "examine", "exit_code", "extra_distributions", "load_matrix",
    "merge_flags", "nearest_row", "plan_repair", "repaired_env", "shell_lines",
]

_REPAIR = {**dict.fromkeys(("apply_env", "describe_op", "merge_flags", "shell_lines"), ".repair.envfile"),
           **dict.fromkeys(("Plan", "Recheck", "RepairError", "Step", "StepStatus", "Target", "TargetKind"),
                           ".repair.model")}
"""The repair wing's names on this face, imported on first use (a plain check loads no repair code)."""


__getattr__ = lazy_names(__name__, _REPAIR, globals())


@dataclass(frozen=True)
class Examination:
    """What examine() found: the snapshot, the findings and the time each step took."""

    snapshot: Snapshot
    findings: list[Finding]
    timings: dict[str, float]


def examine(python: str | None = None, snapshot_file: Path | None = None, deep: bool = False,
            matrix: Matrix | None = None, timeout: float = 120.0, options: Options | None = None) -> Examination:
    """Collect (or load) a snapshot, optionally run the runtime probes, and diagnose it.

    ``options``: what the user asked for on this run (e.g. the training batch, checked against the devices the
    process will see); they go to the diagnosis only, never into the snapshot.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    matrix = matrix or load_matrix()
    timings["matrix"] = time.perf_counter() - t0
    t = time.perf_counter()
    snap = Snapshot.load(snapshot_file) if snapshot_file is not None else collect(python)
    timings["collect"] = time.perf_counter() - t
    if deep and snapshot_file is None:
        t = time.perf_counter()
        from .probe.deep import run_probes

        snap = snap.with_probes(run_probes(snap, snap.interpreter.executable, timeout=timeout))
        timings["deep"] = time.perf_counter() - t
    t = time.perf_counter()
    findings = diagnose(snap, matrix, options)
    timings["diagnose"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return Examination(snap, findings, timings)


def plan_repair(findings: Sequence[Finding], snap: Snapshot, matrix: Matrix) -> Plan:
    """The repair plan for ``findings`` (its ``env_ops`` are what `bdv2 run` gives its child)."""
    from .repair.plan import plan

    return plan(findings, snap, matrix)


def repaired_env(matrix: Matrix, python: str | None = None,
                 environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process should get: ``environ`` (default: this one's) with the plan's env edits."""
    from .repair.flow import repaired_env as _repaired_env

    return _repaired_env(matrix, python, environ)


def extra_distributions() -> dict[str, str]:
    """Top-level module -> the distribution bdv2's extras install for it, where the matrix decides: TensorFlow's is
    the member of its ``[groups]`` entry that the default row names (what the rooms' "not installed" line says)."""
    from .matrix.groups import TENSORFLOW, default_member

    return {"tensorflow": default_member(TENSORFLOW)}


def diagnose_log(text: str, matrix: Matrix, name: str = "log") -> list[Finding]:
    """Findings for a log or traceback, most specific first."""
    from .logs import diagnose_log as _diagnose_log

    return _diagnose_log(text, matrix, name)
