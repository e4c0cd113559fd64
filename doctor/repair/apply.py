"""Apply a repair Plan to the files the doctor owns (and, when asked, with pip), and undo it.

``apply`` records the previous state in ``<prefix>/.bdv2/journal.json`` before it changes anything, so
``undo`` can put back every owned file byte for byte and every package version. A second --fix keeps the
journal of the first: one --undo returns to where the user started.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import json
import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_never

from bdv2.fsutil import write_atomic

from ..findings import EnvOp
from ..probe.snapshot import normalise
from . import envfile, pipmove
from .installer import detect, installed_versions, tail
from .model import Plan, RepairError, Step, StepStatus, Target, TargetKind

JOURNAL_SCHEMA = 1

Runner = Callable[[Sequence[str]], tuple[int, str]]
"""Runs a command, returns (exit code, output). Injected so tests can stand in for pip."""


# -- where the edits live ---------------------------------------------------------------------------

def owned_files(target: Target, ops: tuple[EnvOp, ...]) -> dict[Path, bytes]:
    """The owned files' wanted content after adding ``ops`` to the ops they already apply."""
    match target.kind:
        case TargetKind.VENV:
            script, activate = target.prefix / "bin" / envfile.SCRIPT_NAME, target.prefix / "bin" / "activate"
            merged = _merge_ops(envfile.ops_from_script(_read_text(script)), ops)
            if not activate.exists():
                raise RepairError(f"{activate} is missing: this venv cannot be activated, so --fix has nowhere "
                                  "to hook its environment edits (use `bdv2 run -- CMD` or --print-env)")
            block = envfile.activate_block(script)
            return {script: envfile.env_script(merged).encode(),
                    activate: envfile.with_block(_read_text(activate), block).encode()}
        case TargetKind.CONDA:
            on = target.prefix / "etc" / "conda" / "activate.d" / envfile.SCRIPT_NAME
            off = target.prefix / "etc" / "conda" / "deactivate.d" / envfile.SCRIPT_NAME
            merged = _merge_ops(envfile.ops_from_script(_read_text(on)), ops)
            return {on: envfile.env_script(merged, save=True).encode(), off: envfile.deactivate_script(merged).encode()}
        case TargetKind.SYSTEM:
            return {}
        case _:
            assert_never(target.kind)


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
        write_atomic(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode(), 0o644)

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

def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """Run a command with the doctor's environment; output captured for the report."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, env=env, check=False,
                             stdin=subprocess.DEVNULL)
    except OSError as e:
        return 127, f"cannot run {argv[0]}: {e.strerror}"
    return res.returncode, (res.stdout + res.stderr).strip()


def installed(python: str, run: Runner = run_command, prefix: Path | None = None) -> dict[str, str]:
    """Exact versions of every distribution in the target (what `pip freeze --all` pins), by its own installer."""
    inst = detect(python, prefix or Path(python).parent.parent, run)
    return installed_versions(inst, run)



def _skip_all(p: Plan) -> list[Step]:
    skipped: list[Step] = []
    if p.env_ops:
        skipped.append(Step("environment edits", StepStatus.SKIPPED, "not a venv or conda env, so bdv2 owns no "
                            "activation file here: use eval \"$(bdv2 doctor --fix --print-env)\" "
                            "or `bdv2 run -- CMD`"))
    skipped += [Step(cmd, StepStatus.SKIPPED, "bdv2 changes packages only in a venv or conda env: run it yourself")
                for cmd in p.pip]
    return skipped


def _pip_steps(p: Plan, target: Target, run_pip: bool, run: Runner, skip_reason: str) -> list[Step]:
    if not run_pip:
        why = skip_reason or "pip runs only with --yes (or after you confirm)"
        return [Step(cmd, StepStatus.SKIPPED, why) for cmd in p.pip]
    return pipmove.move_steps(p, detect(target.python, target.prefix, run), run)


def apply(p: Plan, target: Target, run_pip: bool, run: Runner = run_command, skip_reason: str = "") -> list[Step]:
    """Write the env edits to the owned files and, with ``run_pip``, run the pip steps; journal first.

    ``skip_reason``: why the pip steps are not run (shown with each), when ``run_pip`` is false.
    """
    if target.kind is TargetKind.SYSTEM:
        return _skip_all(p)
    wanted = owned_files(target, p.env_ops) if p.env_ops else {}
    writes = {path: data for path, data in wanted.items() if not path.exists() or path.read_bytes() != data}
    pip_argv = p.pip if run_pip else ()
    journal = Journal.load(target.journal)
    if writes or pip_argv:
        journal = journal or Journal(python=target.python, created_at=_now())
        for path in writes:
            journal.remember_file(path)
        if pip_argv and journal.packages is None:
            journal.packages = installed(target.python, run, target.prefix)
        journal.save(target.journal)  # before any change

    steps: list[Step] = []
    for path, data in wanted.items():
        if path in writes:
            old = path.stat().st_mode & 0o7777 if path.exists() else None
            write_atomic(path, data, old)
            steps.append(Step(f"write {path}", StepStatus.APPLIED))
        else:
            steps.append(Step(f"write {path}", StepStatus.UNCHANGED, "already up to date"))
    return steps + _pip_steps(p, target, run_pip, run, skip_reason)


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
        steps += _restore_packages(journal.python, journal.packages, run, target.prefix)
    for name, rec in journal.files.items():
        path = Path(name)
        if rec.get("absent"):
            path.unlink(missing_ok=True)
            steps.append(Step(f"remove {path}", StepStatus.APPLIED))
        else:
            write_atomic(path, base64.b64decode(rec["content"]), int(rec.get("mode", 0o644)))
            steps.append(Step(f"restore {path}", StepStatus.APPLIED))
    for d in sorted(journal.dirs, key=lambda d: -len(Path(d).parts)):  # deepest first
        _rmdir_if_empty(Path(d))
    target.journal.unlink()
    _rmdir_if_empty(target.journal.parent)
    return steps


def _rmdir_if_empty(d: Path) -> None:
    # Not empty (someone else's files) or already gone: leave it.
    with contextlib.suppress(OSError):
        d.rmdir()


def _restore_packages(python: str, old: dict[str, str], run: Runner, prefix: Path) -> list[Step]:
    inst = detect(python, prefix, run)
    now = installed_versions(inst, run)
    old_keys = {normalise(k): (k, v) for k, v in old.items()}
    now_keys = {normalise(k): (k, v) for k, v in now.items()}
    added = sorted(now_keys[k][0] for k in now_keys.keys() - old_keys.keys())
    back = sorted(f"{n}=={v}" for k, (n, v) in old_keys.items() if now_keys.get(k, ("", ""))[1] != v)
    steps: list[Step] = []
    # --no-deps: every distribution is put back at its recorded version one by one, so pip must not
    # resolve (and move) anything else along the way.
    for argv in (inst.uninstall(added) if added else None, inst.install(back, no_deps=True) if back else None):
        if argv is None:
            continue
        code, out = run(argv)
        shown = " ".join(shlex.quote(a) for a in argv)
        if code != 0:
            raise RepairError(f"undo stopped: `{shown}` failed (exit {code}); the journal is kept, so --undo can be "
                              f"run again:\n{tail(out)}")
        steps.append(Step(shown, StepStatus.APPLIED))
    return steps
