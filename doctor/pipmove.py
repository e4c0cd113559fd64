"""A plan's version moves: previewed by the installer's resolver, guarded in conda envs, then carried out.

    preview(plan, target, snap)  -> Preview (what would change, which of it conda installed)
    move_steps(plan, inst, ...)  -> the Steps of the real install, with the row's constraints (`-c`)

In a conda env (a `conda-meta/` folder in the prefix) a distribution whose INSTALLER file says `conda`
(https://packaging.python.org/en/latest/specifications/recording-installed-packages/#the-installer-file),
or that has a conda-meta record and no INSTALLER, belongs to conda: pip replacing it leaves conda's records
wrong, so bdv2 does not do it without --allow-conda-overwrite.
"""

from __future__ import annotations

import contextlib
import enum
import shlex
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .fixtypes import Plan, RepairError, Step, StepStatus, Target
from .installer import Installer, Runner, detect, dry_run_moves, tail
from .snapshot import Snapshot, normalise


class MoveKind(enum.Enum):
    INSTALL = "install"
    UNINSTALL = "uninstall"


@dataclass(frozen=True)
class Move:
    kind: MoveKind
    args: tuple[str, ...]
    shown: str
    """The plan's command as shown to people."""


def moves(p: Plan) -> list[Move]:
    """The plan's pip commands ('python -m pip install "jax==0.10.2"') as installer-neutral moves."""
    out = []
    for cmd, argv in zip(p.pip, p.pip_argv(), strict=True):
        verb = argv[3] if len(argv) > 3 else ""
        args = tuple(a for a in argv[4:] if not a.startswith("-"))
        out.append(Move(MoveKind.UNINSTALL if verb == "uninstall" else MoveKind.INSTALL, args, cmd))
    return out


@dataclass(frozen=True)
class Change:
    name: str
    old: str
    """'' when not installed now."""
    new: str
    """'' when removed."""

    def line(self) -> str:
        return f"{self.name}: {self.old or 'not installed'} -> {self.new or 'removed'}"


@dataclass(frozen=True)
class Preview:
    installer: Installer
    changes: tuple[Change, ...]
    conda_owned: tuple[Change, ...] = ()
    """Changes that would replace or remove a distribution conda installed."""

    def conda_commands(self, prefix: Path) -> list[str]:
        """What to run instead: conda's own commands for its packages."""
        new = [f'"{c.name}={c.new}"' for c in self.conda_owned if c.new]
        gone = [c.name for c in self.conda_owned if not c.new]
        return ([f"conda install -p {prefix} " + " ".join(new)] if new else []) + (
            [f"conda remove -p {prefix} " + " ".join(gone)] if gone else [])


@contextlib.contextmanager
def constraints_file(p: Plan) -> Iterator[str]:
    """The row's constraints (`bdv2 matrix constraints ROW`) in a temporary file; '' when the plan has none."""
    if not p.constraints:
        yield ""
        return
    with tempfile.TemporaryDirectory(prefix="bdv2-fix-") as d:
        path = Path(d) / f"constraints-{p.row or 'row'}.txt"
        path.write_text(p.constraints)
        yield str(path)


def preview(p: Plan, target: Target, snap: Snapshot, run: Runner) -> Preview:
    """Ask the installer's resolver what each install move would change (nothing is installed)."""
    inst = detect(target.python, target.prefix, run)
    now = {d.key: d.version for d in snap.distributions}
    changes: list[Change] = []
    with constraints_file(p) as cfile:
        for m in moves(p):
            if m.kind is MoveKind.UNINSTALL:
                changes += [Change(normalise(a), now.get(normalise(a), ""), "") for a in m.args]
                continue
            argv = inst.install(m.args, cfile, dry_run=True)
            code, out = run(argv)
            if code != 0:
                raise RepairError(f"the resolver refused the move (exit {code}); nothing was changed:\n"
                                  f"$ {shlex.join(argv)}\n{tail(out)}")
            changes += [Change(n, now.get(n, ""), v) for n, v in dry_run_moves(inst, out).items() if now.get(n) != v]
    owned = conda_owned(target.prefix, [c for c in changes if c.old], snap)
    return Preview(inst, tuple(changes), tuple(owned))


def conda_owned(prefix: Path, changes: list[Change], snap: Snapshot) -> list[Change]:
    """The changes that touch a distribution conda installed in ``prefix`` (none outside a conda env)."""
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        return []
    # conda-meta/<name>-<version>-<build>.json, one per conda package
    # (https://docs.conda.io/projects/conda/en/latest/user-guide/concepts/environments.html).
    records = {normalise(f.stem.rsplit("-", 2)[0]) for f in meta.glob("*.json") if f.stem.count("-") >= 2}
    out = []
    for c in changes:
        d = snap.dist(c.name)
        installer = d.installer.strip().lower() if d is not None else ""
        if installer == "conda" or (not installer and c.name in records):
            out.append(c)
    return out


def move_steps(p: Plan, inst: Installer, run: Runner) -> list[Step]:
    """Run the moves with the row's constraints; after a failure the rest are skipped."""
    steps: list[Step] = []
    failed = False
    with constraints_file(p) as cfile:
        for m in moves(p):
            argv = inst.uninstall(m.args) if m.kind is MoveKind.UNINSTALL else inst.install(m.args, cfile)
            shown = shlex.join(argv)
            if failed:
                steps.append(Step(shown, StepStatus.SKIPPED, "an earlier step failed"))
                continue
            code, out = run(argv)
            failed = code != 0
            steps.append(Step(shown, StepStatus.FAILED if failed else StepStatus.APPLIED, tail(out) if failed else ""))
    return steps


def shown_commands(p: Plan, inst: Installer) -> list[str]:
    """The plan's moves as this environment's own installer will run them (uv pip for a uv venv), with the
    row's constraints file named as ``bdv2 matrix constraints ROW`` writes it."""
    cfile = f"{p.row}-constraints.txt"
    return [shlex.join(inst.uninstall(m.args) if m.kind is MoveKind.UNINSTALL else inst.install(m.args, cfile))
            for m in moves(p)]

def detect_for(target: Target, run: Runner) -> Installer:
    return detect(target.python, target.prefix, run)
