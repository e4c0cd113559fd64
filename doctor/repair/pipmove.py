"""A plan's version moves: previewed by the installer's resolver, guarded in conda envs, then carried out.

    checked(plan, target, snap)  -> the plan of the findings' own fixes, kept only if the resolver accepts it
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
import re
import shlex
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement

from ..matrix.groups import alternatives
from ..probe.snapshot import Snapshot, normalise
from .installer import Installer, Runner, detect, dry_run_dists, dry_run_moves, tail
from .model import Plan, RepairError, Step, StepStatus, Target


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
        if self.old and self.old == self.new:
            return f"{self.name}: {self.old} (removed, then installed again)"
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


LOCKSTEP = (("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin", "jax-cuda13-pjrt"),)
"""Distributions released together: moving one frees the others, so the resolver may move them along."""


def held_constraints(p: Plan, snap: Snapshot, free_deps: bool = False) -> str:
    """Every installed distribution the plan does not move, pinned to its version (pip's `-c` format).

    ``free_deps``: the installed requirements of the moved distributions are not held either, so they may
    move with them (TensorFlow named again brings its ml-dtypes range back)."""
    moved = {normalise(_req_name(a)) for m in moves(p) for a in m.args}
    for group in LOCKSTEP:
        if moved & set(group):
            moved |= set(group)
    for name in list(moved) if free_deps else ():
        d = snap.dist(name)
        for text in d.requires if d is not None else ():
            with contextlib.suppress(InvalidRequirement):
                req = Requirement(text)
                if req.marker is None or "extra" not in str(req.marker):
                    moved.add(normalise(req.name))
    return "".join(f"{d.key}=={d.version}\n" for d in sorted(snap.distributions, key=lambda d: d.key)
                   if d.key not in moved and d.parsed is not None)


def _req_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]


def checked(p: Plan, target: Target, snap: Snapshot, run: Runner) -> Plan:
    """``p`` (a move from the findings' own fixes) with every other installed package held at its version,
    as the resolver accepts it; or, when it refuses, or the environment after the move would break a
    requirement that holds now (what `pip check` would then say), or there is no installer: ``p``
    without the move and a note with the reason. Nothing is installed.

    Held strictly first; when that fails, again with the moved distributions' own requirements free too.
    """
    first = ""
    for free_deps in (False, True):
        held = replace(p, constraints=held_constraints(p, snap, free_deps))
        try:
            after = _dry_run(held, target, snap, run)
        except RepairError as e:
            first = first or str(e)
            continue
        broken = newly_unmet(snap, after)
        if broken:
            first = first or "after it, " + "; ".join(broken)
            continue
        now = {d.key: d.version for d in snap.distributions}
        lines = tuple(f"{n}: {now.get(n) or 'not installed'} -> {after[n][0] if n in after else 'removed'}"
                      for n in sorted({*now, *after}) if now.get(n) != (after[n][0] if n in after else None))
        return replace(held, changes=lines or ("the resolver changes nothing",))
    return _refused(p, first)


def _refused(p: Plan, why: str) -> Plan:
    return replace(p, pip=(), row="", notes=(*p.notes, f"not proposing {'; '.join(p.pip)}: {why}"))


def _dry_run(p: Plan, target: Target, snap: Snapshot, run: Runner) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (version, requirements) of the environment after the plan's moves, by the resolver."""
    inst = detect(target.python, target.prefix, run)
    after = {d.key: (d.version, d.requires) for d in snap.distributions}
    with constraints_file(p) as cfile:
        for m in moves(p):
            if m.kind is MoveKind.UNINSTALL:
                for a in m.args:
                    after.pop(normalise(a), None)
                continue
            argv = inst.install(m.args, cfile, dry_run=True)
            code, out = run(argv)
            if code != 0:
                raise RepairError(f"the resolver refused it (exit {code}):\n$ {shlex.join(argv)}\n"
                                  f"{reason(explain(argv, out, run))}")
            after.update(dry_run_dists(inst, out))
            # What pip found already satisfied is not in its report; after an uninstall of the same name
            # in this plan it is installed again at the version the environment has now.
            for a in m.args:
                d = snap.dist(_req_name(a))
                if d is not None and d.key not in after:
                    after[d.key] = (d.version, d.requires)
    return after


def newly_unmet(snap: Snapshot, after: dict[str, tuple[str, tuple[str, ...]]]) -> list[str]:
    """Requirements (Requires-Dist, the target's markers) unmet after the move that are met now."""
    def unmet(dists: dict[str, tuple[str, tuple[str, ...]]]) -> set[str]:
        out = set()
        for name, (version, requires) in dists.items():
            for text in requires:
                try:
                    req = Requirement(text)
                    if req.marker is not None and not req.marker.evaluate({**snap.markers, "extra": ""}):
                        continue
                except (InvalidRequirement, InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
                    continue
                got = dists.get(normalise(req.name))
                if provided(req.name, dists) and (got is None or req.specifier.contains(got[0], prereleases=True)):
                    continue
                have = f"{got[0]} is installed" if got else "it is not installed"
                out.add(f"{name} {version} requires {req.name}{req.specifier}, but {have}")
        return out
    before = unmet({d.key: (d.version, d.requires) for d in snap.distributions})
    return sorted(unmet(after) - before)


def provided(name: str, dists: dict[str, tuple[str, tuple[str, ...]]]) -> bool:
    """Installed, or provided by a distribution of the same matrix group (tensorflow-cpu installs `tensorflow`)."""
    key = normalise(name)
    return key in dists or any(alt in dists for alt in alternatives(key))


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
                                  f"$ {shlex.join(argv)}\n{reason(explain(argv, out, run))}")
            got = dry_run_moves(inst, out)
            changes += [Change(n, now.get(n, ""), v) for n, v in got.items() if now.get(n) != v]
            # Removed by an earlier move and found already satisfied by this dry run: installed again.
            again = {normalise(_req_name(a)) for a in m.args} - set(got)
            changes = [Change(c.name, c.old, c.old) if c.name in again and not c.new else c for c in changes]
    owned = conda_owned(target.prefix, [c for c in changes if c.old], snap)
    return Preview(inst, tuple(changes), tuple(owned))


def explain(argv: list[str], out: str, run: Runner) -> str:
    """pip under -q leaves out why it refused ("The conflict is caused by: ..."): ask again without it."""
    if "-q" not in argv:
        return out
    loud = [a for a in argv if a != "-q"]
    if "--report" in loud:
        i = loud.index("--report")
        del loud[i:i + 2]
    return run(loud)[1] or out


def reason(out: str) -> str:
    """The resolver's own words on a refusal: pip's ERROR lines and the conflict lines above them."""
    lines = out.strip().splitlines()
    keep = [x for x in lines if re.search(r"ERROR|conflict|requires|depends on|because|No matching", x)]
    return "\n".join(keep[-8:]) if keep else tail(out)


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
    row's constraints file named as ``bdv2 matrix constraints ROW`` writes it (none for a plan without)."""
    cfile = f"{p.row}-constraints.txt" if p.row else ""
    return [shlex.join(inst.uninstall(m.args) if m.kind is MoveKind.UNINSTALL else inst.install(m.args, cfile))
            for m in moves(p)]

def detect_for(target: Target, run: Runner) -> Installer:
    return detect(target.python, target.prefix, run)
