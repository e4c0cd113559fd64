"""Turn Findings into a repair Plan: the merged environment edits and the pip move to the nearest known-good row.

When no known-good row fits (or a finding needs a move a row cannot express: two distributions that write
the same files, tensorstore against TensorFlow over ml-dtypes), the move is built from the findings' own
fixes instead (``own_moves``); repair/flow.py has the environment's resolver check such a plan before it is shown.

Pure: nothing here reads or changes the live system.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

from ..checks import PIP
from ..diagnose import nearest_row
from ..findings import Area, EnvOp, EnvOpKind, Finding, Severity
from ..matrix.groups import TENSORFLOW, members
from ..matrix.knowledge import Knowledge
from ..matrix.load import Matrix
from ..matrix.verify import constraints
from ..probe.snapshot import Snapshot, normalise
from . import envfile
from .model import Plan


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


OWN_FIXES = "own-fixes"
"""The plan's ``row`` when its move comes from the findings' own fixes, not from a known-good row."""

SPECIAL = ("tfp-and-tfp-nightly", "tensorstore-vs-tensorflow-ml-dtypes")
"""Findings whose repair no row move expresses: their move is built here (``special_move``)."""



@dataclass
class _Moves:
    """Version moves merged from several findings: the first finding to name a package decides it."""

    uninstall: list[str] = field(default_factory=list)
    install: dict[str, str] = field(default_factory=dict)
    """normalised name -> requirement as written"""
    because: list[str] = field(default_factory=list)

    def add(self, fid: str, uninstall: Sequence[str], install: Sequence[str]) -> None:
        took = False
        for name in uninstall:
            if normalise(name) not in self.uninstall and normalise(name) not in self.install:
                self.uninstall.append(normalise(name))
                took = True
        for req in install:
            key = normalise(Requirement(req).name)
            if key not in self.install:
                self.install[key] = req
                took = True
        if took and fid not in self.because:
            self.because.append(fid)

    def commands(self) -> tuple[str, ...]:
        cmds = [f"{PIP} uninstall -y " + " ".join(self.uninstall)] if self.uninstall else []
        if self.install:
            cmds.append(f"{PIP} install " + " ".join(f'"{r}"' for r in self.install.values()))
        return tuple(cmds)


def _parse_commands(commands: Sequence[str]) -> tuple[list[str], list[str]]:
    """(uninstall names, install requirements) of a fix's first remedy: its commands up to the first install.

    Later commands are alternatives ('# or ...'); commands that need the shell ($(...)) are left out.
    """
    uninstall: list[str] = []
    install: list[str] = []
    for cmd in commands:
        if "$(" in cmd:
            continue
        argv = shlex.split(cmd, comments=True)
        if argv[:3] != ["python", "-m", "pip"] or len(argv) < 4:
            continue
        args = [a for a in argv[4:] if not a.startswith("-")]
        if argv[3] == "uninstall":
            uninstall += args
            continue
        if argv[3] != "install":
            continue
        for a in args:
            try:
                install.append(str(Requirement(a)))
            except InvalidRequirement:
                continue
        if install:
            break
    return uninstall, install


def _tfp_pick(snap: Snapshot, k: Knowledge) -> str:
    """Of tensorflow-probability and tfp-nightly, the one that fits what else is installed ([knowledge.tfp])."""
    distrax, jax, tf = snap.version("distrax"), snap.version("jax"), _tf_version(snap)
    nightly = snap.dist("tfp-nightly")
    if nightly is not None and ((distrax is not None and distrax >= k.tfp_nightly_distrax)
                                or (tf is None and jax is not None and jax >= k.tfp_nightly_jax)):
        return f"tfp-nightly=={nightly.version}"  # distrax depends on it; the released TFP breaks on that jax
    if tf is not None:
        return f"tensorflow-probability=={k.tfp_for(tf)}"
    d = snap.dist("tensorflow-probability")
    return f"tensorflow-probability=={d.version}" if d is not None else "tensorflow-probability"


def _tf_version(snap: Snapshot) -> Version | None:
    for name in members(TENSORFLOW):
        v = snap.version(name)
        if v is not None:
            return v
    return None


def special_move(f: Finding, snap: Snapshot, k: Knowledge) -> tuple[list[str], list[str]]:
    """The move for a finding in SPECIAL: (uninstall names, install requirements)."""
    if f.id == "tfp-and-tfp-nightly":
        # Both write tensorflow_probability/: uninstalling one removes files the other needs, so both go
        # and the one that fits is installed again on a clean slate.
        return ["tensorflow-probability", "tfp-nightly"], [_tfp_pick(snap, k)]
    # tensorstore vs TensorFlow over ml-dtypes: tensorstore is the easy one to move (TensorFlow pins
    # ml-dtypes and numpy for much else); a new orbax-checkpoint needs a new tensorstore ([knowledge.ml_dtypes_movers]).
    install = [f"tensorstore<{k.tensorstore_ml_dtypes_05}"]
    orbax = snap.version("orbax-checkpoint")
    if orbax is not None and orbax >= k.orbax_new_tensorstore:
        install.append(f"orbax-checkpoint<{k.orbax_new_tensorstore}")
    return [], install


def own_moves(findings: Sequence[Finding], snap: Snapshot,
              k: Knowledge) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(pip commands, finding ids) merged from the package errors' own fixes, SPECIAL ones first."""
    errors = [f for f in findings if f.severity is Severity.ERROR and f.area is Area.PACKAGES]
    merged = _Moves()
    for f in sorted(errors, key=lambda f: f.id not in SPECIAL):
        if {normalise(n) for n in f.packages} & {*merged.uninstall, *merged.install}:
            continue  # an earlier (special) move already takes care of this package
        if f.id in SPECIAL:
            merged.add(f.id, *special_move(f, snap, k))
        elif f.fix is not None and f.fix.commands:
            merged.add(f.id, *_parse_commands(f.fix.commands))
    return merged.commands(), tuple(merged.because)


def _left_over(errors: Sequence[Finding], row_cmds: Sequence[str], snap: Snapshot,
               k: Knowledge) -> tuple[tuple[str, ...], list[str]]:
    """The own fixes of package errors whose packages the row's move does not touch (a dependency the row
    does not list, such as one a forced upgrade left out), and their ids."""
    moved = set()
    for cmd in row_cmds:
        for a in shlex.split(cmd, comments=True)[4:]:
            if not a.startswith("-"):
                try:
                    moved.add(normalise(Requirement(a).name))
                except InvalidRequirement:
                    continue
    left = [f for f in errors if f.packages and not {normalise(n) for n in f.packages} & moved]
    extra, ids = own_moves(left, snap, k)
    return extra, list(ids)


def plan(findings: Sequence[Finding], snap: Snapshot, matrix: Matrix) -> Plan:
    """Merge the env edits of every error/warning finding, and the pip move to the nearest known-good row
    (or, when none fits, the findings' own fixes)."""
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
    own: tuple[str, ...] = ()
    errors = [f for f in findings if f.severity is Severity.ERROR and f.area is Area.PACKAGES]
    if errors:
        move = None if any(f.id in SPECIAL for f in errors) else nearest_row(snap, matrix)
        if move is not None and move.commands:
            pip, row, changes, cons = move.commands, move.row.name, move.changes, constraints(move.row)
            extra, left = _left_over(errors, pip, snap, matrix.knowledge)
            if extra:
                pip += extra
                edits.notes.append(f"the row's move leaves {', '.join(left)} as they are: their own fixes "
                                   "are added after it")
        else:
            pip, own = own_moves(findings, snap, matrix.knowledge)
            row = OWN_FIXES if pip else ""
            if move is None and not any(f.id in SPECIAL for f in errors):
                edits.notes.append("no known-good row fits this Python and GPU kind: the version moves "
                                   "come from the findings' own fixes")
            elif move is not None:
                edits.notes.append(f"the nearest known-good row ({move.row.name}) moves nothing here: the "
                                   "version moves come from the findings' own fixes")
            if not pip:
                edits.notes.append("package errors remain and their fixes name no version move: "
                                   "follow the fixes listed with each finding")
    return Plan(python=snap.interpreter.executable, env_ops=edits.result(), pip=pip, row=row, changes=changes,
                constraints=cons, because=tuple(edits.because), notes=tuple(edits.notes), own_fixes=own)
