"""Repair: turn Findings into a Plan, apply it to files the doctor owns and (when asked) with pip, undo it.

``plan`` is pure. ``apply`` records the previous state in ``<prefix>/.bdv2/journal.json`` before it
changes anything, so ``undo`` can put back every owned file byte for byte and every package version.
A second --fix keeps the journal of the first: one --undo returns to where the user started.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import envfile
from .collect import collect
from .deep import PROBES, run_probes
from .diagnose import diagnose, nearest_row
from .envfile import apply_env, shell_lines
from .errors import CollectError, DoctorError
from .findings import Area, EnvOp, EnvOpKind, Finding, Severity
from .matrix import Matrix
from .snapshot import ProbeResult, Snapshot, normalise

__all__ = ["Journal", "Plan", "Recheck", "RepairError", "Step", "Target", "apply", "apply_env", "installed", "plan",
           "recheck", "repaired_env", "shell_lines", "undo"]

JOURNAL_SCHEMA = 1

Runner = Callable[[Sequence[str]], tuple[int, str]]
"""Runs a command, returns (exit code, output). Injected so tests can stand in for pip."""


class RepairError(DoctorError):
    """A repair or an undo could not be carried out; the message says what is left as it was."""


@dataclass(frozen=True)
class Plan:
    """What --fix would do. Empty when nothing applies."""

    python: str
    """The target interpreter: pip steps run as ``<python> -m pip ...``."""
    env_ops: tuple[EnvOp, ...] = ()
    pip: tuple[str, ...] = ()
    """Commands as shown to people ('python -m pip install "jax==0.10.2"')."""
    row: str = ""
    changes: tuple[str, ...] = ()
    """Human lines of the version moves ('jaxlib 0.9.2 -> ==0.10.2')."""
    because: tuple[str, ...] = ()
    """Ids of the findings the environment edits come from."""
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.env_ops and not self.pip

    def pip_argv(self) -> list[list[str]]:
        """Each pip step as argv for the target interpreter (the leading 'python' replaced by it)."""
        out = []
        for cmd in self.pip:
            argv = shlex.split(cmd, comments=True)
            if argv and argv[0] in ("python", "python3"):
                argv[0] = self.python
            out.append(argv)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"python": self.python, "env_ops": [o.to_dict() for o in self.env_ops], "pip": list(self.pip),
                "row": self.row, "changes": list(self.changes), "because": list(self.because),
                "notes": list(self.notes), "empty": self.empty}


def plan(findings: Sequence[Finding], snap: Snapshot, matrix: Matrix) -> Plan:
    """Merge the env edits of every error/warning finding, and the pip move to the nearest known-good row."""
    ops: list[EnvOp] = []
    because: list[str] = []
    notes: list[str] = []
    set_values: dict[str, str] = {}
    have_flags = snap.env.get("XLA_FLAGS", "").split()
    new_flags: dict[str, tuple[str, str]] = {}  # flag name -> (flag, finding id)
    flag_slot = -1
    for f in findings:
        if f.severity is Severity.INFO or f.fix is None:
            continue
        for op in f.fix.env_ops:
            if op.op is EnvOpKind.SET and op.name in envfile.FLAG_VARS:
                # Added to the user's flags, never replacing them; a flag already set this way is left alone.
                for flag in op.value.split():
                    name = envfile.flag_name(flag)
                    if flag in have_flags:
                        continue
                    if name in new_flags:
                        if new_flags[name][0] != flag:
                            notes.append(f"{f.id}: {flag} not added, {new_flags[name][0]} "
                                         f"(from {new_flags[name][1]}) comes first")
                        continue
                    new_flags[name] = (flag, f.id)
                    if flag_slot < 0:
                        flag_slot = len(ops)
                        ops.append(op)  # placeholder, replaced by the merged op below
                    if f.id not in because:
                        because.append(f.id)
                continue
            if op.op is EnvOpKind.SET and op.name in set_values and set_values[op.name] != op.value:
                notes.append(f"{f.id}: {op.name}={op.value} not applied, {op.name}={set_values[op.name]} comes first")
                continue
            if op in ops:
                continue
            if op.op is EnvOpKind.SET:
                set_values[op.name] = op.value
            ops.append(op)
            if f.id not in because:
                because.append(f.id)
    if flag_slot >= 0:
        ops[flag_slot] = EnvOp(EnvOpKind.SET, "XLA_FLAGS", " ".join(v[0] for v in new_flags.values()))

    pip: tuple[str, ...] = ()
    row = ""
    changes: tuple[str, ...] = ()
    if any(f.severity is Severity.ERROR and f.area is Area.PACKAGES for f in findings):
        move = nearest_row(snap, matrix)
        if move is not None and move.commands:
            pip, row, changes = move.commands, move.row.name, move.changes
        else:
            notes.append("package errors remain but no known-good row fits this Python and GPU kind: "
                         "follow the fixes listed with each finding")
    python = str(snap.python.get("executable") or sys.executable)
    return Plan(python=python, env_ops=tuple(ops), pip=pip, row=row, changes=changes, because=tuple(because),
                notes=tuple(notes))


# -- where the edits live ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """The environment being repaired and the files the doctor owns in it."""

    kind: str
    """'venv', 'conda' or 'system' (system: nothing is written, only --print-env helps)."""
    prefix: Path
    python: str

    @classmethod
    def of(cls, snap: Snapshot) -> Target:
        py = snap.python
        prefix = Path(str(py.get("prefix", "")))
        kind = "venv" if py.get("is_venv") else "conda" if py.get("is_conda") else "system"
        return cls(kind, prefix, str(py.get("executable") or sys.executable))

    @property
    def journal(self) -> Path:
        return self.prefix / ".bdv2" / "journal.json"

    def files(self, ops: tuple[EnvOp, ...]) -> dict[Path, bytes]:
        """The owned files' wanted content after adding ``ops`` to the ops they already apply."""
        if self.kind == "venv":
            script, activate = self.prefix / "bin" / envfile.SCRIPT_NAME, self.prefix / "bin" / "activate"
            merged = _merge_ops(envfile.ops_from_script(_read_text(script)), ops)
            if not activate.exists():
                raise RepairError(f"{activate} is missing: this venv cannot be activated, so --fix has nowhere "
                                  "to hook its environment edits (use `bdv2 run -- CMD` or --print-env)")
            block = envfile.activate_block(script)
            return {script: envfile.env_script(merged).encode(),
                    activate: envfile.with_block(_read_text(activate), block).encode()}
        if self.kind == "conda":
            on = self.prefix / "etc" / "conda" / "activate.d" / envfile.SCRIPT_NAME
            off = self.prefix / "etc" / "conda" / "deactivate.d" / envfile.SCRIPT_NAME
            merged = _merge_ops(envfile.ops_from_script(_read_text(on)), ops)
            return {on: envfile.env_script(merged, save=True).encode(), off: envfile.deactivate_script(merged).encode()}
        return {}


def _merge_ops(old: tuple[EnvOp, ...], new: tuple[EnvOp, ...]) -> tuple[EnvOp, ...]:
    # A later --fix adds to what an earlier one wrote; removing edits is --undo's job.
    return tuple(dict.fromkeys((*old, *new)))


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


# -- journal ------------------------------------------------------------------------------------

@dataclass
class Journal:
    """The state before the first --fix: owned files (content or absent), created folders, package versions."""

    python: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    packages: dict[str, str] | None = None
    created_at: str = ""

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise RepairError(f"cannot read the undo journal {path}: {e}") from e
        if not isinstance(data, dict) or data.get("schema") != JOURNAL_SCHEMA:
            raise RepairError(f"{path} is not a bdv2 journal (schema {JOURNAL_SCHEMA})")
        return cls(python=data["python"], files=data.get("files", {}), dirs=list(data.get("dirs", [])),
                   packages=data.get("packages"), created_at=data.get("created_at", ""))

    def save(self, path: Path) -> None:
        doc = {"schema": JOURNAL_SCHEMA, "python": self.python, "created_at": self.created_at,
               "files": self.files, "dirs": self.dirs, "packages": self.packages}
        envfile.write_atomic(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode(), 0o644)

    def remember_file(self, path: Path) -> None:
        """Keep ``path``'s state unless an earlier --fix already did (that one is the original)."""
        if str(path) in self.files:
            return
        if path.exists():
            self.files[str(path)] = {"content": base64.b64encode(path.read_bytes()).decode(),
                                     "mode": path.stat().st_mode & 0o7777}
        else:
            self.files[str(path)] = {"absent": True}
            # Folders --fix creates (etc/conda/activate.d) are removed again by --undo.
            d = path.parent
            while not d.exists() and str(d) not in self.dirs:
                self.dirs.append(str(d))
                d = d.parent


# -- applying ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    what: str
    status: str
    """'applied', 'unchanged', 'skipped' or 'failed'."""
    detail: str = ""


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """Run a command with the doctor's environment; output captured for the report."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, env=env, check=False,
                             stdin=subprocess.DEVNULL)
    except OSError as e:
        return 127, f"cannot run {argv[0]}: {e.strerror}"
    return res.returncode, (res.stdout + res.stderr).strip()


def installed(python: str, run: Runner = run_command) -> dict[str, str]:
    """Exact versions of every distribution in the target (what `pip freeze --all` pins), by its own pip."""
    code, out = run([python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"])
    if code != 0:
        raise RepairError(f"`{python} -m pip list` failed (exit {code}): {_tail(out)}")
    try:
        # pip may print warnings after the JSON line; the JSON is the line that starts with '['.
        line = next(x for x in out.splitlines() if x.startswith("["))
        return {d["name"]: d["version"] for d in json.loads(line)}
    except (StopIteration, ValueError, KeyError, TypeError) as e:
        raise RepairError(f"`{python} -m pip list` printed no package list") from e


def _tail(text: str, n: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def apply(p: Plan, target: Target, run_pip: bool, run: Runner = run_command) -> list[Step]:
    """Write the env edits to the owned files and, with ``run_pip``, run the pip steps; journal first."""
    if target.kind == "system":
        skipped: list[Step] = []
        if p.env_ops:
            skipped.append(Step("environment edits", "skipped", "not a venv or conda env, so bdv2 owns no "
                                "activation file here: use eval \"$(bdv2 doctor --fix --print-env)\" "
                                "or `bdv2 run -- CMD`"))
        skipped += [Step(cmd, "skipped", "bdv2 changes packages only in a venv or conda env: run it yourself")
                    for cmd in p.pip]
        return skipped
    wanted = target.files(p.env_ops) if p.env_ops else {}
    writes = {path: data for path, data in wanted.items() if not path.exists() or path.read_bytes() != data}
    pip_argv = p.pip_argv() if run_pip else []
    journal = Journal.load(target.journal)
    if writes or pip_argv:
        journal = journal or Journal(python=target.python, created_at=_now())
        for path in writes:
            journal.remember_file(path)
        if pip_argv and journal.packages is None:
            journal.packages = installed(target.python, run)
        journal.save(target.journal)  # before any change

    steps: list[Step] = []
    for path, data in wanted.items():
        if path in writes:
            old = path.stat().st_mode & 0o7777 if path.exists() else None
            envfile.write_atomic(path, data, old)
            steps.append(Step(f"write {path}", "applied"))
        else:
            steps.append(Step(f"write {path}", "unchanged", "already up to date"))
    failed = False
    for cmd, argv in zip(p.pip, p.pip_argv(), strict=True):
        if not run_pip:
            steps.append(Step(cmd, "skipped", "pip runs only with --yes (or after you confirm)"))
        elif failed:
            steps.append(Step(cmd, "skipped", "an earlier pip step failed"))
        else:
            code, out = run(argv)
            failed = code != 0
            steps.append(Step(" ".join(shlex.quote(a) for a in argv), "failed" if failed else "applied",
                              _tail(out) if failed else ""))
    return steps


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# -- undo ----------------------------------------------------------------------------------------

def undo(target: Target, run: Runner = run_command) -> list[Step] | None:
    """Put back the journal's packages and files, then drop the journal. None: there was nothing to undo."""
    journal = Journal.load(target.journal)
    if journal is None:
        return None
    steps: list[Step] = []
    if journal.packages is not None:
        steps += _restore_packages(journal.python, journal.packages, run)
    for name, rec in journal.files.items():
        path = Path(name)
        if rec.get("absent"):
            path.unlink(missing_ok=True)
            steps.append(Step(f"remove {path}", "applied"))
        else:
            envfile.write_atomic(path, base64.b64decode(rec["content"]), int(rec.get("mode", 0o644)))
            steps.append(Step(f"restore {path}", "applied"))
    for d in sorted(journal.dirs, key=lambda d: -len(Path(d).parts)):  # deepest first
        _rmdir_if_empty(Path(d))
    target.journal.unlink()
    _rmdir_if_empty(target.journal.parent)
    return steps


def _rmdir_if_empty(d: Path) -> None:
    # Not empty (someone else's files) or already gone: leave it.
    with contextlib.suppress(OSError):
        d.rmdir()


def _restore_packages(python: str, old: dict[str, str], run: Runner) -> list[Step]:
    now = installed(python, run)
    old_keys = {normalise(k): (k, v) for k, v in old.items()}
    now_keys = {normalise(k): (k, v) for k, v in now.items()}
    added = sorted(now_keys[k][0] for k in now_keys.keys() - old_keys.keys())
    back = sorted(f"{n}=={v}" for k, (n, v) in old_keys.items() if now_keys.get(k, ("", ""))[1] != v)
    steps: list[Step] = []
    # --no-deps: every distribution is put back at its recorded version one by one, so pip must not
    # resolve (and move) anything else along the way.
    for argv in ([python, "-m", "pip", "uninstall", "-y", *added] if added else None,
                 [python, "-m", "pip", "install", "--no-deps", *back] if back else None):
        if argv is None:
            continue
        code, out = run(argv)
        shown = " ".join(shlex.quote(a) for a in argv)
        if code != 0:
            raise RepairError(f"undo stopped: `{shown}` failed (exit {code}); the journal is kept, so --undo can be "
                              f"run again:\n{_tail(out)}")
        steps.append(Step(shown, "applied"))
    return steps


# -- after applying ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recheck:
    findings: list[Finding]
    fixed: tuple[str, ...]
    """Ids of error/warning findings that are gone."""
    probes_ok: tuple[str, ...]
    """Probes that failed before and pass now."""
    probes_failing: tuple[str, ...]


def collect_with_env(python: str, env: Mapping[str, str], timeout: float = 120.0) -> Snapshot:
    """The static snapshot of ``python`` as it looks from a process started with ``env``.

    The collection runs in a child `bdv2 doctor` started with the repaired environment, so every
    environment-derived fact (library folders on LD_LIBRARY_PATH, tools on PATH) is read afresh.
    """
    with tempfile.TemporaryDirectory(prefix="bdv2-recheck-") as tmp:
        out = Path(tmp) / "snapshot.json"
        cmd = [sys.executable, "-m", "bdv2.cli", "doctor", "--python", python, "--save-snapshot", str(out), "--json"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(env), check=False,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CollectError(f"re-checking {python} after the fix failed: {e}") from e
        if not out.exists():
            raise CollectError(f"re-checking {python} after the fix failed (exit {res.returncode}): "
                               f"{_tail(res.stderr)}")
        return Snapshot.load(out)


def recheck(before: Snapshot, before_findings: Sequence[Finding], p: Plan, matrix: Matrix,
            environ: Mapping[str, str], deep: bool, timeout: float = 120.0) -> Recheck:
    """Collect again (and re-run the probes that failed) with the plan's env edits applied."""
    env = apply_env_plan(p, environ)
    snap = collect_with_env(p.python, env)
    was_failing = tuple(r.name for r in before.probes if r.status in ("failed", "timeout"))
    if deep and before.probes:
        again = {r.name: r for r in run_probes(snap, p.python, timeout,
                                               [pr for pr in PROBES if pr.name in was_failing], env=env)}
        snap = snap.with_probes(tuple(again.get(r.name, r) for r in before.probes))
    after = diagnose(snap, matrix)
    remaining = {f.id for f in after}
    fixed = tuple(dict.fromkeys(f.id for f in before_findings
                                if f.severity is not Severity.INFO and f.id not in remaining))
    status: dict[str, ProbeResult] = {r.name: r for r in snap.probes}
    ok = tuple(n for n in was_failing if n in status and status[n].status == "ok")
    return Recheck(after, fixed, ok, tuple(n for n in was_failing if n not in ok))


def apply_env_plan(p: Plan, environ: Mapping[str, str]) -> dict[str, str]:
    return apply_env(p.env_ops, environ)


def repaired_env(matrix: Matrix, python: str | None = None,
                 environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process should get: ``environ`` with the current plan's env edits.

    Used by `bdv2 run -- CMD` and by the trainer for its child processes.
    """
    snap = collect(python)
    return apply_env_plan(plan(diagnose(snap, matrix), snap, matrix), os.environ if environ is None else environ)
