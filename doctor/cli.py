"""`bdv2 doctor` and `bdv2 run`: parse the options, call the doctor's library, print.

The doctor's 19 options become one frozen DoctorRequest (``request_of``), whose Mode ``choose_mode`` picks;
everything else is in the library: examine() checks, repair/flow.py plans/applies/undoes, report renders.
A mode's wing is imported only when that mode runs: a plain check loads no repair flow, log reader or
runtime probe. (`bdv2 matrix` is matrix/cli.py.)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, assert_never

import click

from . import Examination, examine, exit_code, load_matrix
from .checks.registry import Options
from .errors import CollectError, DoctorError
from .findings import Exit, Finding
from .matrix.load import Matrix
from .probe.snapshot import Snapshot
from .report import render
from .request import DoctorRequest, Mode, OutputFormat, PipConsent
from .rooms import ROOMS, missing_rooms

if TYPE_CHECKING:
    from rich.console import Console

    from .repair.flow import FixResult
    from .repair.model import Plan, Target

__all__ = ["DoctorRequest", "Mode", "doctor", "request_of", "run"]

DOCTOR_EXAMPLES = """
\b
Examples:
  bdv2 doctor                          check this interpreter's packages (metadata only, ~0.3 s)
  bdv2 doctor --deep -v                also import jax/TF/TFP/distrax/orbax in subprocesses
  bdv2 doctor --python ~/venvs/train   examine another environment from a clean one
  bdv2 doctor --json > report.json     machine-readable (schema in README.md)
  bdv2 doctor --markdown               a report to paste into a bug report (secrets redacted)
  bdv2 doctor --save-snapshot env.json then, anywhere:  bdv2 doctor --snapshot env.json
  bdv2 doctor --log train.log          name the cause of a failed run from its log alone
  bdv2 doctor --batch-size 256         check the batch divides over the visible GPUs
  bdv2 doctor --python ~/venvs/t --need train   exit 1 unless it can train (jax, flax, TF, ... installed)
  bdv2 doctor --fix --dry-run          show the repair plan, change nothing
  bdv2 doctor --fix --yes              apply it, pip steps included (`bdv2 doctor --undo` reverses it)
  eval "$(bdv2 doctor --fix --print-env)"   repair the current shell's environment only

\b
Exit codes: 0 no error in what is installed (the verdict names a missing data or training stack);
1 an error remains (or a warning with --strict, or a stack --need asks for is missing); 2 usage error;
3 could not examine at all (no such interpreter, the metadata probe failed or timed out,
an unreadable snapshot).
"""


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
    from rich.console import Console  # text only: --json and --markdown load no rich

    return Console(highlight=False, soft_wrap=True)


def _text_console(request: DoctorRequest) -> Console | None:
    return _console() if request.output is OutputFormat.TEXT else None


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
@click.option("--need", type=click.Choice(list(ROOMS)), multiple=True, metavar="ROOM",
              help="Exit 1 when the environment lacks this room's stack: train (bdv2[train]) or data (bdv2[data]); "
                   "repeatable.")
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
def doctor(**flags: Any) -> None:
    """Check the installed JAX/TF/TFP/CUDA stack against compat_matrix.toml and say how to fix it."""
    request = request_of(flags)
    if request.mode is Mode.UNDO:
        sys.exit(_undo(request.python, _console()))
    try:
        matrix = load_matrix(request.matrix_file)
        if request.mode is Mode.LOG:
            from .logs import diagnose_log

            assert request.log_file is not None
            log = request.log_file
            findings = diagnose_log(log.read(), matrix, name=getattr(log, "name", "log"))
            render(request.output, findings, None, _text_console(request), click.echo, timings={},
                   strict=request.strict, verbose=request.verbose)
            sys.exit(exit_code(findings, request.strict))
        ex = examine(python=request.python, snapshot_file=request.snapshot_file, deep=request.deep, matrix=matrix,
                     timeout=request.timeout, options=request.options)
        if request.save_snapshot:
            ex.snapshot.save(request.save_snapshot)
    except DoctorError as e:
        _fail(e)
    sys.exit(_after_examining(request, ex, matrix))


def request_of(flags: dict[str, Any]) -> DoctorRequest:
    """The one request the doctor's options make (click.UsageError, exit code 2, for a combination that makes
    no sense)."""
    mode = choose_mode(Flags(snapshot=flags["snapshot_file"] is not None, log=flags["log_file"] is not None,
                             python=bool(flags["python"]), deep=flags["deep"], as_json=flags["as_json"],
                             markdown=flags["markdown"], fix=flags["fix"], dry_run=flags["dry_run"],
                             print_env=flags["print_env"], undo=flags["undo"]))
    output = (OutputFormat.JSON if flags["as_json"] else OutputFormat.MARKDOWN if flags["markdown"]
              else OutputFormat.TEXT)
    return DoctorRequest(
        mode=mode, output=output, python=flags["python"], snapshot_file=flags["snapshot_file"],
        save_snapshot=flags["save_snapshot"], log_file=flags["log_file"], deep=flags["deep"],
        timeout=flags["timeout"], options=Options(batch_size=flags["batch_size"]), strict=flags["strict"],
        verbose=flags["verbose"], matrix_file=flags["matrix_file"], need=tuple(flags["need"]),
        consent=PipConsent(yes=flags["yes"], allow_conda=flags["allow_conda_overwrite"]))


def _with_needs(code: int, request: DoctorRequest, snap: Snapshot) -> int:
    """--need ROOM: a room whose stack is not installed makes an otherwise healthy check exit 1."""
    if code or not request.need:
        return code
    return Exit.PROBLEMS if any(m.room in request.need for m in missing_rooms(snap)) else code


def _after_examining(request: DoctorRequest, ex: Examination, matrix: Matrix) -> int:
    snap, findings, mode = ex.snapshot, ex.findings, request.mode
    match mode:
        case Mode.PRINT_ENV:
            from .repair import flow
            from .repair.envfile import shell_lines

            # stdout carries only the sh lines for eval, nothing else.
            click.echo("\n".join(shell_lines(flow.plan_fix(snap, findings, matrix)[0].env_ops)))
            return 0
        case Mode.FIX_DRY_RUN if request.output is OutputFormat.JSON:
            from .repair import flow

            plan, _ = flow.plan_fix(snap, findings, matrix)
            render(request.output, findings, snap, None, click.echo, timings=ex.timings,
                   strict=request.strict, extra={"plan": plan.to_dict()})
            return exit_code(findings, request.strict)
        case Mode.CHECK | Mode.SNAPSHOT | Mode.FIX_DRY_RUN | Mode.FIX:
            console = _text_console(request)
            fixing = mode in (Mode.FIX, Mode.FIX_DRY_RUN)
            code = exit_code(findings, request.strict) if fixing else _with_needs(
                exit_code(findings, request.strict), request, snap)
            # the JSON's exit_code is the process's: --need counts there too
            render(request.output, findings, snap, console, click.echo, timings=ex.timings, strict=request.strict,
                   verbose=request.verbose, extra=None if fixing else {"exit_code": code})
            if request.save_snapshot and console is not None:
                console.print(f"snapshot written to {request.save_snapshot}")
            if fixing:
                assert console is not None, "--fix shows its plan as text (choose_mode)"
                return _fix(request, snap, findings, matrix, console)
            return code
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


def _fix(request: DoctorRequest, snap: Snapshot, findings: list[Finding], matrix: Matrix, console: Console) -> int:
    from .repair import flow
    from .report.repair import render_plan, render_recheck, render_steps

    plan, target = flow.plan_fix(snap, findings, matrix)
    render_plan(plan, target, console, flow.shown_moves(plan, target))
    if plan.empty or request.mode is Mode.FIX_DRY_RUN:
        return exit_code(findings, request.strict)
    run_pip, why_not = _pip_go_ahead(plan, target, snap, console, request.consent) if plan.pip else (False, "")
    try:
        result: FixResult = flow.carry_out(plan, target, snap, findings, matrix, run_pip=run_pip, deep=request.deep,
                                           timeout=request.timeout, skip_reason=why_not)
    except DoctorError as e:
        _fail(e)
    render_steps("Applied", result.steps, console)
    if result.undo_hint:
        console.print(f"  {result.undo_hint}")
    render_recheck(result.recheck, console)
    return exit_code(result.recheck.findings, request.strict)


def _pip_go_ahead(plan: Plan, target: Target, snap: Snapshot, console: Console, how: PipConsent) -> tuple[bool, str]:
    """Preview the version moves with the resolver; (run them?, why not). Conda's packages need their own flag."""
    from rich.markup import escape

    from .repair import flow
    from .repair.model import RepairError, TargetKind
    from .report.repair import render_preview

    if target.kind is TargetKind.SYSTEM:
        return False, ""  # apply() says why: bdv2 changes packages only in a venv or conda env
    try:
        pv = flow.preview_moves(plan, target, snap)
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
    from .repair import flow
    from .report.repair import render_steps

    try:
        result = flow.undo_env(python)
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
        from .repair import flow

        env = flow.repaired_env(load_matrix(), python)
    except DoctorError as e:
        raise click.ClickException(str(e)) from e
    try:
        os.execvpe(command[0], list(command), env)
    except OSError as e:
        raise click.ClickException(f"cannot run {command[0]}: {e.strerror}") from e
