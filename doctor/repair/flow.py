"""The --fix, --undo and `bdv2 run` flows as library calls: the CLI only parses options and prints.

    fix:   plan_fix(...) -> the CLI shows the plan (and asks about pip) -> carry_out(...) -> FixResult
    undo:  undo_env(python) -> UndoResult
    run:   repaired_env(matrix, python) -> the environment for the child command
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..diagnose import diagnose
from ..findings import Finding, Severity
from ..matrix.load import Matrix
from ..probe.collect import collect, interpreter
from ..probe.deep import PROBES, run_probes
from ..probe.snapshot import ProbeResult, ProbeStatus, Snapshot
from . import apply as _apply
from . import pipmove
from .envfile import apply_env
from .model import Plan, Recheck, RepairError, Step, StepStatus, Target, TargetKind
from .plan import plan


@dataclass(frozen=True)
class FixResult:
    steps: list[Step]
    recheck: Recheck
    target: Target

    @property
    def undo_hint(self) -> str:
        """How to take the edits back, when --fix wrote a venv's files ('' otherwise)."""
        if self.target.kind is TargetKind.VENV and any(s.status is StepStatus.APPLIED for s in self.steps):
            return (f"undo with: bdv2 doctor --python {self.target.prefix} --undo; "
                    f"new shells get the edits from {self.target.prefix}/bin/activate")
        return ""


@dataclass(frozen=True)
class UndoResult:
    target: Target
    steps: list[Step] | None
    """None: there was no journal, so nothing to undo."""


def plan_fix(snap: Snapshot, findings: Sequence[Finding], matrix: Matrix) -> tuple[Plan, Target]:
    """The repair plan for ``findings`` and the environment it would change.

    A version move built from the findings' own fixes (no known-good row fits) is first put to the
    environment's resolver with every other installed package held at its version; a move it refuses is
    dropped from the plan with the resolver's reason as a note, so it is never proposed.
    """
    p, target = plan(findings, snap, matrix), Target.of(snap)
    if p.own_fixes and p.pip:
        p = pipmove.checked(p, target, snap, _apply.run_command)
    return p, target


def shown_moves(p: Plan, target: Target) -> tuple[list[str], str]:
    """The plan's version moves as the target's installer will run them, and a line on the constraints file.

    Falls back to the plan's pip wording when no installer can be found (carrying out then says why).
    """
    if not p.pip:
        return [], ""
    try:
        inst = pipmove.detect_for(target, _apply.run_command)
    except RepairError:
        return list(p.pip), ""
    if p.own_fixes:
        note = ("the findings' own fixes, accepted by the resolver with every other installed package held at "
                f"its version ({p.row}-constraints.txt, which --fix writes for you)")
        return pipmove.shown_commands(p, inst), note if p.constraints else ""
    return pipmove.shown_commands(p, inst), (f"{p.row}-constraints.txt is what `bdv2 matrix constraints {p.row}` "
                                              "prints; --fix writes it for you")

def preview_moves(p: Plan, target: Target, snap: Snapshot) -> pipmove.Preview:
    """What the plan's version moves would change, by the environment's own resolver (nothing installed).

    RepairError when there is no installer or the resolver refuses the move.
    """
    return pipmove.preview(p, target, snap, _apply.run_command)


def carry_out(p: Plan, target: Target, before: Snapshot, findings: Sequence[Finding], matrix: Matrix,
              run_pip: bool, deep: bool, timeout: float, environ: Mapping[str, str] | None = None,
              skip_reason: str = "") -> FixResult:
    """Apply ``p`` (pip steps only with ``run_pip``, else skipped for ``skip_reason``), then examine again.

    A repair that changed anything is done only when the runtime probes pass as well: after applied steps the
    probes run (as with --deep) whether or not --deep was asked for, so "healthy" means imports and ops work.
    """
    steps = _apply.apply(p, target, run_pip=run_pip, skip_reason=skip_reason)
    changed = any(s.status is StepStatus.APPLIED for s in steps)
    rc = recheck(before, findings, p, matrix, os.environ if environ is None else environ, deep=deep or changed,
                 timeout=timeout)
    return FixResult(steps, rc, target)


def undo_env(python: str | None) -> UndoResult:
    """Reverse every --fix made to ``python``'s environment (files and package versions)."""
    target = Target.of_interpreter(interpreter(python))
    return UndoResult(target, _apply.undo(target))


def recheck(before: Snapshot, before_findings: Sequence[Finding], p: Plan, matrix: Matrix,
            environ: Mapping[str, str], deep: bool, timeout: float = 120.0) -> Recheck:
    """Collect again with the plan's env edits applied; with ``deep``, run the probes again: the ones that failed
    when the probes ran before, every probe when they had not run (a static --fix is checked at run time too)."""
    env = apply_env(p.env_ops, environ)
    snap = collect(p.python, env=env)
    was_failing = tuple(r.name for r in before.probes if r.status.bad)
    if deep and before.probes:
        again = {r.name: r for r in run_probes(snap, p.python, timeout,
                                               [pr for pr in PROBES if pr.name in was_failing], env=env)}
        snap = snap.with_probes(tuple(again.get(r.name, r) for r in before.probes))
    elif deep:
        snap = snap.with_probes(run_probes(snap, p.python, timeout, env=env))
        was_failing = tuple(r.name for r in snap.probes if r.status.bad)
    after = diagnose(snap, matrix)
    remaining = {f.id for f in after}
    fixed = tuple(dict.fromkeys(f.id for f in before_findings
                                if f.severity is not Severity.INFO and f.id not in remaining))
    status: dict[str, ProbeResult] = {r.name: r for r in snap.probes}
    ok = tuple(n for n in was_failing if n in status and status[n].status is ProbeStatus.OK)
    return Recheck(after, fixed, ok, tuple(n for n in was_failing if n not in ok))


def repaired_env(matrix: Matrix, python: str | None = None,
                 environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process should get: ``environ`` with the current plan's env edits.

    Used by `bdv2 run -- CMD` and by the trainer for its child processes.
    """
    snap = collect(python)
    return apply_env(plan(diagnose(snap, matrix), snap, matrix).env_ops, os.environ if environ is None else environ)
