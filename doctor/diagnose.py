"""Run every rule over a Snapshot, merge overlapping reports, and name the nearest known-good row.

Also the one place that joins the matrix to the check registry: ``load_matrix`` gives the matrix loader the
registered check names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .checks import INTERCHANGEABLE_GROUPS, PIP, Options, eval_rule, in_spec, provider, registered
from .findings import Area, Finding, Fix, Severity, sort_findings
from .matrix.load import Matrix, Row, RowKind
from .matrix.load import load_matrix as _load_matrix
from .probe.snapshot import Snapshot, normalise


def load_matrix(path: Path | str | None = None) -> Matrix:
    """The matrix at ``path`` (None: the one shipped with bdv2), its ``check`` names checked against the
    registered built-in checks."""
    return _load_matrix(path, registered())


@dataclass(frozen=True)
class RowMove:
    """The moves that put an environment onto a row."""

    row: Row
    changes: tuple[str, ...]
    """Human lines: 'jax 0.4.13 -> ==0.10.2'."""
    commands: tuple[str, ...]


def diagnose(snap: Snapshot, matrix: Matrix, options: Options | None = None) -> list[Finding]:
    """All findings for ``snap``: data rules, built-in checks, and the nearest-row advice.

    ``options`` are what the user asked for on this run (--batch-size), kept apart from the snapshot's facts.
    """
    opts = options or Options()
    checks = registered()
    found: list[Finding] = []
    for rule in matrix.rules:
        if rule.check:
            found.extend(checks[rule.check](rule, snap, matrix, opts))
        else:
            f = eval_rule(rule, snap, matrix)
            if f is not None:
                found.append(f)
    found = accept_known_warnings(_merge(found), snap, matrix)
    if any(f.severity is Severity.ERROR and f.area is Area.PACKAGES for f in found):
        move = nearest_row(snap, matrix)
        if move is not None and move.commands:
            found.append(Finding(
                id="nearest-row", severity=Severity.INFO, area=Area.PACKAGES,
                title=f"nearest known-good row: {move.row.name} ({move.row.title}), {len(move.changes)} change(s)",
                evidence=move.changes,
                fix=Fix(f"move this environment onto row '{move.row.name}'", move.commands),
                source=move.row.source,
            ))
    return sort_findings(found)


def matching_rows(snap: Snapshot, matrix: Matrix) -> list[Row]:
    """The rows this environment is on: every package of the row installed, at a version the row allows."""
    out = []
    for row in matrix.rows:
        if not in_spec(snap.python_version, row.python):
            continue
        dists = [(provider(name, snap, matrix), spec) for name, spec in row.packages.items()]
        if all(d is not None and d.parsed is not None and in_spec(d.parsed, spec) for d, spec in dists):
            out.append(row)
    return out


def accept_known_warnings(found: list[Finding], snap: Snapshot, matrix: Matrix) -> list[Finding]:
    """A warning a matching row lists in ``known_warnings`` becomes a note (INFO), saying which row accepts it.

    The row's ``verified_note`` explains why (tests/doctor/test_rules.py
    test_a_rows_known_warning_is_a_note_on_that_row).
    """
    if not any(f.severity is Severity.WARNING for f in found):
        return found
    rows = matching_rows(snap, matrix)
    out = []
    for f in found:
        row = next((r for r in rows if f.id in r.known_warnings), None)
        if f.severity is Severity.WARNING and row is not None:
            f = replace(f, severity=Severity.INFO, title=f"{f.title} (accepted on row {row.name})",
                        evidence=(*f.evidence, f"accepted on row {row.name}: {row.verified_note}"))
        out.append(f)
    return out


def _merge(found: list[Finding]) -> list[Finding]:
    """Drop a generic Requires-Dist report when a specific package rule already judges the same pair (its
    verdict wins, milder or not: TF 2.15 beside ml-dtypes 0.5 is a warning). A finding of another area never
    hides it: the API check's warnings name the jax calls a too-new flax makes, and the unmet Requires-Dist
    stays the error."""
    specific = [set(f.packages) for f in found
                if f.id not in ("requires-dist", "extras-in-use") and f.area is Area.PACKAGES
                and len(f.packages) >= 2]
    out = []
    for f in found:
        if f.id in ("requires-dist", "extras-in-use") and any(set(f.packages) <= s for s in specific):
            continue
        out.append(f)
    return out


def _gpu_kind(snap: Snapshot) -> RowKind:
    if snap.dist("jax-cuda13-plugin") or snap.dist("nvidia-cudnn-cu13"):
        return RowKind.CUDA13
    lib = snap.dist("jaxlib")
    if (lib is not None and "+cuda11" in lib.version) or snap.dist("nvidia-cudnn-cu11"):
        return RowKind.CUDA11
    if snap.dist("jax-cuda12-plugin") or snap.dist("nvidia-cudnn-cu12") or (lib is not None and "cuda" in lib.version):
        return RowKind.CUDA12
    return RowKind.CPU


def row_changes(snap: Snapshot, matrix: Matrix, row: Row) -> tuple[list[str], list[str], list[str]]:
    """(human change lines, pip install args, pip uninstall names) to put ``snap`` on ``row``.

    Only packages the environment already has are moved (plus a row's GPU packages when the
    environment is a GPU one): the doctor never adds TensorFlow to an env that has none.
    """
    changes, install, uninstall = [], [], []
    for name, spec in row.packages.items():
        group = next((g for g, members in matrix.groups.items() if name in members), None)
        installed = snap.dist(name)
        if installed is None and group:
            for member in matrix.groups[group]:
                other = snap.dist(member)
                if other is None:
                    continue
                if group in INTERCHANGEABLE_GROUPS:  # tensorflow-cpu satisfies a row naming tensorflow
                    installed, name = other, other.key
                else:
                    uninstall.append(other.key)
                    changes.append(f"{other.name} {other.version} -> replaced by {name}{spec}")
                    install.append(f'"{name}{spec}"')
                    installed = None
                    name = ""
                break
        if not name:
            continue
        if installed is None:
            wanted_gpu = row.kind is not RowKind.CPU and name in row.own_packages
            if wanted_gpu:
                changes.append(f"{name}: not installed -> {name}{spec}")
                install.append(f'"{name}{spec}"')
            continue
        if installed.parsed is None or not in_spec(installed.parsed, spec):
            changes.append(f"{installed.name} {installed.version} -> {spec}")
            install.append(f'"{normalise(name)}{spec}"')
    return changes, install, uninstall


def nearest_row(snap: Snapshot, matrix: Matrix) -> RowMove | None:
    """The known-good row reachable with the fewest package moves (same Python, same GPU kind)."""
    kind = _gpu_kind(snap)
    best: tuple[int, int, Row, list[str], list[str], list[str]] | None = None
    for i, row in enumerate(matrix.rows):
        if row.kind is not kind or not in_spec(snap.python_version, row.python):
            continue
        changes, install, uninstall = row_changes(snap, matrix, row)
        score = (len(changes), 0 if row.default else i + 1)
        if best is None or score < best[:2]:
            best = (*score, row, changes, install, uninstall)
    if best is None:
        return None
    _, _, row, changes, install, uninstall = best
    cmds = []
    if uninstall:
        cmds.append(f"{PIP} uninstall -y " + " ".join(sorted(set(uninstall))))
    if install:
        links = "".join(f" --find-links={link}" for link in row.find_links)  # one token: an option, not a package
        cmds.append(f"{PIP} install " + " ".join(install) + links)
    return RowMove(row=row, changes=tuple(changes), commands=tuple(cmds))
