"""Turn Findings into a repair Plan: the merged environment edits and the pip move to the nearest known-good row.

Pure: nothing here reads or changes the live system.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import envfile
from .diagnose import nearest_row
from .findings import Area, EnvOp, EnvOpKind, Finding, Severity
from .fixtypes import Plan
from .matrix import Matrix
from .snapshot import Snapshot
from .verify import constraints


@dataclass
class _Edits:
    """The environment edits gathered so far, with the ids they come from and what was left out."""

    have_flags: list[str]
    ops: list[EnvOp] = field(default_factory=list)
    because: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    set_values: dict[str, str] = field(default_factory=dict)
    new_flags: dict[str, tuple[str, str]] = field(default_factory=dict)
    """flag name -> (flag, finding id)"""
    flag_slot: int = -1

    def credit(self, fid: str) -> None:
        if fid not in self.because:
            self.because.append(fid)

    def add_flags(self, op: EnvOp, fid: str) -> None:
        # Added to the user's flags, never replacing them; a flag already set this way is left alone.
        for flag in op.value.split():
            name = envfile.flag_name(flag)
            if flag in self.have_flags:
                continue
            if name in self.new_flags:
                if self.new_flags[name][0] != flag:
                    self.notes.append(f"{fid}: {flag} not added, {self.new_flags[name][0]} "
                                      f"(from {self.new_flags[name][1]}) comes first")
                continue
            self.new_flags[name] = (flag, fid)
            if self.flag_slot < 0:
                self.flag_slot = len(self.ops)
                self.ops.append(op)  # placeholder, replaced by the merged op in result()
            self.credit(fid)

    def add(self, op: EnvOp, fid: str) -> None:
        if op.op is EnvOpKind.SET and op.name in envfile.FLAG_VARS:
            self.add_flags(op, fid)
            return
        if op.op is EnvOpKind.SET and op.name in self.set_values and self.set_values[op.name] != op.value:
            self.notes.append(f"{fid}: {op.name}={op.value} not applied, "
                              f"{op.name}={self.set_values[op.name]} comes first")
            return
        if op in self.ops:
            return
        if op.op is EnvOpKind.SET:
            self.set_values[op.name] = op.value
        self.ops.append(op)
        self.credit(fid)

    def result(self) -> tuple[EnvOp, ...]:
        ops = list(self.ops)
        if self.flag_slot >= 0:
            ops[self.flag_slot] = EnvOp(EnvOpKind.SET, "XLA_FLAGS", " ".join(v[0] for v in self.new_flags.values()))
        return tuple(ops)


def plan(findings: Sequence[Finding], snap: Snapshot, matrix: Matrix) -> Plan:
    """Merge the env edits of every error/warning finding, and the pip move to the nearest known-good row."""
    edits = _Edits(have_flags=snap.env.get("XLA_FLAGS", "").split())
    for f in findings:
        if f.severity is Severity.INFO or f.fix is None:
            continue
        for op in f.fix.env_ops:
            edits.add(op, f.id)
    pip: tuple[str, ...] = ()
    row = ""
    changes: tuple[str, ...] = ()
    cons = ""
    if any(f.severity is Severity.ERROR and f.area is Area.PACKAGES for f in findings):
        move = nearest_row(snap, matrix)
        if move is not None and move.commands:
            pip, row, changes, cons = move.commands, move.row.name, move.changes, constraints(move.row)
        else:
            edits.notes.append("package errors remain but no known-good row fits this Python and GPU kind: "
                               "follow the fixes listed with each finding")
    python = str(snap.python.get("executable") or sys.executable)
    return Plan(python=python, env_ops=edits.result(), pip=pip, row=row, changes=changes, constraints=cons,
                because=tuple(edits.because), notes=tuple(edits.notes))
