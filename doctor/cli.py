"""`bdv2 doctor`, `bdv2 run` and `bdv2 matrix`: parse the options, call the doctor's library, print.

The doctor's 17 options select one Mode (``choose_mode``); everything else is in the library:
examine() checks, fixflow plans/applies/undoes, report renders.
"""

from __future__ import annotations

import enum
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn, assert_never

import click
from rich.console import Console
from rich.markup import escape

from . import Examination, Options, examine, exit_code, fixflow, load_matrix
from .errors import CollectError, DoctorError
from .findings import Exit, Finding
from .logs.signatures import diagnose_log
from .matrix.cli import matrix
from .matrix.load import Matrix
from .probe.snapshot import Snapshot
from .repair.envfile import shell_lines
from .repair.model import Plan, RepairError, Target, TargetKind
from .report import render_plan, render_preview, render_recheck, render_steps, render_text, to_json, to_markdown

__all__ = ["Mode", "doctor", "matrix", "run"]

DOCTOR_EXAMPLES = """
\b
Examples:
  bdv2 doctor                          check this interpreter's packages (metadata only, ~1 s)
  bdv2 doctor --deep -v                also import jax/TF/TFP/distrax/orbax in subprocesses
  bdv2 doctor --python ~/venvs/train   examine another environment from a clean one
  bdv2 doctor --json > report.json     machine-readable (schema in README.md)
  bdv2 doctor --markdown               a report to paste into a bug report (secrets redacted)
  bdv2 doctor --save-snapshot env.json then, anywhere:  bdv2 doctor --snapshot env.json
  bdv2 doctor --log train.log          name the cause of a failed run from its log alone
  bdv2 doctor --batch-size 256         check the batch divides over the visible GPUs
  bdv2 doctor --fix --dry-run          show the repair plan, change nothing
  bdv2 doctor --fix --yes              apply it, pip steps included (`bdv2 doctor --undo` reverses it)
  eval "$(bdv2 doctor --fix --print-env)"   repair the current shell's environment only

\b
Exit codes: 0 healthy; 1 an error remains (or a warning with --strict); 2 usage error;
3 could not examine at all (no such interpreter, the metadata probe failed or timed out,
an unreadable snapshot).
"""


class Mode(enum.Enum):
    """What one `bdv2 doctor` call does."""

    CHECK = "check"
    """Examine a live environment and report."""
    SNAPSHOT = "snapshot"
    """Diagnose a saved snapshot."""
    LOG = "log"
    """Diagnose a log alone."""
    FIX = "fix"
    """Report, show the repair plan, apply it, examine again."""
    FIX_DRY_RUN = "fix-dry-run"
    """Report and show the plan (--json: the plan inside the report); change nothing."""
    PRINT_ENV = "print-env"
    """Print only the plan's environment edits as sh lines for eval."""
    UNDO = "undo"
    """Reverse every earlier --fix."""


@dataclass(frozen=True)
class Flags:
    """The options that decide the mode."""

    snapshot: bool = False
    log: bool = False
    python: bool = False
    deep: bool = False
    as_json: bool = False
    markdown: bool = False
    fix: bool = False
    dry_run: bool = False
    print_env: bool = False
    undo: bool = False


def choose_mode(f: Flags) -> Mode:
    """The one mode these options ask for; click.UsageError (exit code 2) for a combination that makes no sense."""
    if f.as_json and f.markdown:
        raise click.UsageError("choose one of --json and --markdown")
    fix = f.fix or f.dry_run or f.print_env
    if (fix or f.undo) and (f.snapshot or f.log):
        raise click.UsageError("--fix and --undo work on a live environment: not with --snapshot or --log")
    if fix and f.undo:
        raise click.UsageError("choose one of --fix and --undo")
    if f.undo:
        return Mode.UNDO
    if fix and (f.markdown or (f.as_json and not f.dry_run)):
        raise click.UsageError("--fix shows its plan to people; for a machine-readable plan use --fix --dry-run --json")
    if f.snapshot and (f.python or f.deep):
        raise click.UsageError("--snapshot replays a saved environment: it cannot be combined with --python or --deep")
    if f.print_env:
        return Mode.PRINT_ENV
    if f.dry_run:
        return Mode.FIX_DRY_RUN
    if fix:
        return Mode.FIX
    if f.log:
        return Mode.LOG
    return Mode.SNAPSHOT if f.snapshot else Mode.CHECK


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@click.command(epilog=DOCTOR_EXAMPLES)
@click.option("--python", "python", metavar="PATH",
              help="Examine this interpreter (or venv folder) instead of the current one.")
@click.option("--snapshot", "snapshot_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Diagnose a snapshot saved with --save-snapshot instead of a live environment.")
@click.option("--save-snapshot", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the snapshot as JSON.")
@click.option("--deep", is_flag=True, help="Runtime probes: import the heavy packages, each in its own subprocess.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds allowed to each runtime probe.")
@click.option("--log", "log_file", type=click.File("r", errors="replace"),
              help="Diagnose a log or traceback file ('-' for stdin) alone.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (schema 1).")
@click.option("--markdown", is_flag=True, help="Print a Markdown report for a bug report.")
@click.option("--batch-size", type=click.IntRange(min=1), metavar="N",
              help="Check that the training batch N divides over the GPUs this process will see.")
@click.option("--strict", is_flag=True, help="Warnings also make the exit code 1.")
@click.option("-v", "--verbose", is_flag=True, help="Show evidence, sources and timings.")
@click.option("--matrix", "matrix_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Use another compat_matrix.toml (default: the one shipped with bdv2).")
@click.option("--fix", is_flag=True, help="Show the repair plan, apply its environment edits (pip steps with --yes).")
@click.option("--dry-run", is_flag=True, help="With --fix: print the plan only, change nothing.")
@click.option("--print-env", is_flag=True, help="With --fix: print only sh lines for eval \"$(...)\" (this shell).")
@click.option("--yes", "-y", is_flag=True, help="With --fix: run the pip steps without asking.")
@click.option("--allow-conda-overwrite", is_flag=True,
              help="With --fix in a conda env: let pip replace packages conda installed (--yes alone does not).")
@click.option("--undo", is_flag=True, help="Restore the files and package versions from before the first --fix.")
def doctor(python: str | None, snapshot_file: Path | None, save_snapshot: Path | None, deep: bool, timeout: float,
           log_file: IO[str] | None, as_json: bool, markdown: bool, batch_size: int | None, strict: bool, verbose: bool,
           matrix_file: Path | None, fix: bool, dry_run: bool, print_env: bool, yes: bool, allow_conda_overwrite: bool,
           undo: bool) -> None:
    """Check the installed JAX/TF/TFP/CUDA stack against compat_matrix.toml and say how to fix it."""
    mode = choose_mode(Flags(snapshot=snapshot_file is not None, log=log_file is not None, python=bool(python),
                             deep=deep, as_json=as_json, markdown=markdown, fix=fix, dry_run=dry_run,
                             print_env=print_env, undo=undo))
    if mode is Mode.UNDO:
        sys.exit(_undo(python, _console()))
    try:
        matrix = load_matrix(matrix_file)
        if mode is Mode.LOG:
            assert log_file is not None
            findings = diagnose_log(log_file.read(), matrix, name=getattr(log_file, "name", "log"))
            _report(findings, None, {}, as_json, markdown, verbose, strict, None)
            sys.exit(exit_code(findings, strict))
        ex = examine(python=python, snapshot_file=snapshot_file, deep=deep, matrix=matrix, timeout=timeout,
                     options=Options(batch_size=batch_size))
        if save_snapshot:
            ex.snapshot.save(save_snapshot)
    except DoctorError as e:
        _fail(e)
    sys.exit(_after_examining(mode, ex, matrix, as_json=as_json, markdown=markdown, verbose=verbose, strict=strict,
                              save_snapshot=save_snapshot, yes=yes, deep=deep, timeout=timeout,
                              allow_conda=allow_conda_overwrite))


def _after_examining(mode: Mode, ex: Examination, matrix: Matrix, *, as_json: bool, markdown: bool, verbose: bool,
                     strict: bool, save_snapshot: Path | None, yes: bool, deep: bool, timeout: float,
                     allow_conda: bool = False) -> int:
    snap, findings = ex.snapshot, ex.findings
    match mode:
        case Mode.PRINT_ENV:
            # stdout carries only the sh lines for eval, nothing else.
            click.echo("\n".join(shell_lines(fixflow.plan_fix(snap, findings, matrix)[0].env_ops)))
            return 0
        case Mode.FIX_DRY_RUN if as_json:
            plan, _ = fixflow.plan_fix(snap, findings, matrix)
            click.echo(to_json(findings, snap, strict, ex.timings, extra={"plan": plan.to_dict()}))
            return exit_code(findings, strict)
        case Mode.CHECK | Mode.SNAPSHOT | Mode.FIX_DRY_RUN | Mode.FIX:
            console = _console()
            _report(findings, snap, ex.timings, as_json, markdown, verbose, strict, console)
            if save_snapshot and not (as_json or markdown):
                console.print(f"snapshot written to {save_snapshot}")
            if mode in (Mode.FIX, Mode.FIX_DRY_RUN):
                return _fix(snap, findings, matrix, console, dry_run=mode is Mode.FIX_DRY_RUN,
                            how=_PipConsent(yes, allow_conda), strict=strict, deep=deep, timeout=timeout)
            return exit_code(findings, strict)
        case Mode.LOG | Mode.UNDO:
            raise AssertionError(f"{mode} is handled before examining")
        case _:
            assert_never(mode)


def _fail(e: DoctorError) -> NoReturn:
    """One message on stderr; exit 3 when the environment could not be examined at all, else 1."""
    if isinstance(e, CollectError):
        click.echo(f"Error: cannot examine: {e}", err=True)
        sys.exit(Exit.CANNOT_EXAMINE)
    raise click.ClickException(str(e)) from e


def _report(findings: list[Finding], snap: Snapshot | None, timings: dict[str, float], as_json: bool,
            markdown: bool, verbose: bool, strict: bool, console: Console | None) -> None:
    if as_json:
        click.echo(to_json(findings, snap, strict, timings))
    elif markdown:
        click.echo(to_markdown(findings, snap, strict))
    else:
        render_text(findings, snap, console or _console(), verbose=verbose, strict=strict, timings=timings)


@dataclass(frozen=True)
class _PipConsent:
    yes: bool
    allow_conda: bool


def _fix(snap: Snapshot, findings: list[Finding], matrix: Matrix, console: Console, dry_run: bool, how: _PipConsent,
         strict: bool, deep: bool, timeout: float) -> int:
    plan, target = fixflow.plan_fix(snap, findings, matrix)
    render_plan(plan, target, console, fixflow.shown_moves(plan, target))
    if plan.empty or dry_run:
        return exit_code(findings, strict)
    run_pip, why_not = _pip_go_ahead(plan, target, snap, console, how) if plan.pip else (False, "")
    try:
        result = fixflow.carry_out(plan, target, snap, findings, matrix, run_pip=run_pip, deep=deep, timeout=timeout,
                                   skip_reason=why_not)
    except DoctorError as e:
        _fail(e)
    render_steps("Applied", result.steps, console)
    if result.undo_hint:
        console.print(f"  {result.undo_hint}")
    render_recheck(result.recheck, console)
    return exit_code(result.recheck.findings, strict)


def _pip_go_ahead(plan: Plan, target: Target, snap: Snapshot, console: Console, how: _PipConsent) -> tuple[bool, str]:
    """Preview the version moves with the resolver; (run them?, why not). Conda's packages need their own flag."""
    if target.kind is TargetKind.SYSTEM:
        return False, ""  # apply() says why: bdv2 changes packages only in a venv or conda env
    try:
        pv = fixflow.preview_moves(plan, target, snap)
    except RepairError as e:
        console.print(f"  [red]version moves not run:[/] {escape(str(e))}")
        return False, "not run: " + str(e).splitlines()[0].split(". ")[0] + " (see above)"
    render_preview(pv, plan.row, console)
    if pv.conda_owned and not how.allow_conda:
        names = ", ".join(c.line() for c in pv.conda_owned)
        console.print(f"  [red]conda installed what pip would replace:[/] {escape(names)}. pip would leave conda's "
                      "records wrong, so bdv2 does not run it (--yes alone does not change that). Use conda:")
        for cmd in pv.conda_commands(target.prefix):
            console.print(f"    [cyan]$ {escape(cmd)}[/]")
        console.print("  or re-run with --fix --allow-conda-overwrite to let pip replace them anyway.")
        return False, "conda installed " + ", ".join(c.name for c in pv.conda_owned) + ": see the conda command above"
    if how.yes:
        return True, ""
    if sys.stdin.isatty() and click.confirm(f"Run {len(plan.pip)} step(s) with {pv.installer.name}?", default=False):
        return True, ""
    return False, ""


def _undo(python: str | None, console: Console) -> int:
    try:
        result = fixflow.undo_env(python)
    except DoctorError as e:
        _fail(e)
    if result.steps is None:
        console.print(f"nothing to undo: no journal at {result.target.journal} "
                      "(bdv2 doctor --fix has not changed this env)")
    else:
        render_steps("Undone", result.steps, console)
    return 0


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--python", "python", metavar="PATH", help="Diagnose this interpreter instead of the current one.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(python: str | None, command: tuple[str, ...]) -> None:
    """Run COMMAND with the environment edits `bdv2 doctor --fix` would make:  bdv2 run -- python train.py"""
    try:
        env = fixflow.repaired_env(load_matrix(), python)
    except DoctorError as e:
        raise click.ClickException(str(e)) from e
    try:
        os.execvpe(command[0], list(command), env)
    except OSError as e:
        raise click.ClickException(f"cannot run {command[0]}: {e.strerror}") from e
