"""The `bdv2` command: a click group wiring the rooms together. No logic lives here.

Importing this module imports neither jax nor TensorFlow (tests/test_cli.py checks it).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import IO, ClassVar

import click
from rich.console import Console

from bdv2 import __version__
from bdv2.doctor import Finding, Matrix, Snapshot, examine, exit_code, load_matrix, repair
from bdv2.doctor.collect import collect
from bdv2.doctor.errors import DoctorError
from bdv2.doctor.report import render_plan, render_recheck, render_steps, render_text, to_json, to_markdown
from bdv2.doctor.signatures import diagnose_log

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
Exit codes: 0 healthy, 1 an error remains (or a warning with --strict), 2 usage error.
"""


class _Rooms(click.Group):
    """Loads the data room's commands only when asked for: they import numpy, and the doctor must work
    (and import nothing heavy) even where numpy itself is what is broken."""

    _lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "data": ("bdv2.data_tools.cli", "data"),
        "matrix": ("bdv2.doctor.matrix_cli", "matrix"),
        "train": ("bdv2.trainer.cli", "train"),
        "demo": ("bdv2.trainer.cli", "demo"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module, attr = self._lazy[cmd_name]
            cmd: click.Command = getattr(importlib.import_module(module), attr)
            return cmd
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Rooms, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bdv2")
def main() -> None:
    """bdv2: diagnose and repair JAX/TF/CUDA stacks, convert BridgeData V2, train policies."""


@main.command(epilog=DOCTOR_EXAMPLES)
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
# >>> --fix options (doctor/repair.py) >>>
@click.option("--fix", is_flag=True, help="Show the repair plan, apply its environment edits (pip steps with --yes).")
@click.option("--dry-run", is_flag=True, help="With --fix: print the plan only, change nothing.")
@click.option("--print-env", is_flag=True, help="With --fix: print only sh lines for eval \"$(...)\" (this shell).")
@click.option("--yes", "-y", is_flag=True, help="With --fix: run the pip steps without asking.")
@click.option("--undo", is_flag=True, help="Restore the files and package versions from before the first --fix.")
# <<< --fix options <<<
def doctor(python: str | None, snapshot_file: Path | None, save_snapshot: Path | None, deep: bool, timeout: float,
           log_file: IO[str] | None, as_json: bool, markdown: bool, batch_size: int | None, strict: bool, verbose: bool,
           matrix_file: Path | None, fix: bool, dry_run: bool, print_env: bool, yes: bool, undo: bool) -> None:
    """Check the installed JAX/TF/TFP/CUDA stack against compat_matrix.toml and say how to fix it."""
    if as_json and markdown:
        raise click.UsageError("choose one of --json and --markdown")
    fix = fix or dry_run or print_env
    if (fix or undo) and (snapshot_file or log_file):
        raise click.UsageError("--fix and --undo work on a live environment: not with --snapshot or --log")
    if fix and undo:
        raise click.UsageError("choose one of --fix and --undo")
    if undo:
        sys.exit(_undo(python, Console(highlight=False, soft_wrap=True)))
    if fix and (markdown or (as_json and not dry_run)):
        raise click.UsageError("--fix shows its plan to people; for a machine-readable plan use --fix --dry-run --json")
    if snapshot_file and (python or deep):
        raise click.UsageError("--snapshot replays a saved environment: it cannot be combined with --python or --deep")
    console = Console(highlight=False, soft_wrap=True)
    try:
        matrix = load_matrix(matrix_file)
        if log_file is not None:
            name = getattr(log_file, "name", "log")
            findings = diagnose_log(log_file.read(), matrix, name=name)
            snap, timings = None, {}
        else:
            ex = examine(python=python, snapshot_file=snapshot_file, deep=deep, matrix=matrix, timeout=timeout,
                         batch_size=batch_size)
            snap, findings, timings = ex.snapshot, ex.findings, ex.timings
            if save_snapshot:
                snap.save(save_snapshot)
    except DoctorError as e:
        raise click.ClickException(str(e)) from e
    if fix and snap is not None and (print_env or as_json):
        plan = repair.plan(findings, snap, matrix)
        # --print-env: stdout carries only the sh lines for eval, nothing else.
        click.echo("\n".join(repair.shell_lines(plan.env_ops)) if print_env
                   else to_json(findings, snap, strict, timings, extra={"plan": plan.to_dict()}))
        sys.exit(0 if print_env else exit_code(findings, strict))
    if as_json:
        click.echo(to_json(findings, snap, strict, timings))
    elif markdown:
        click.echo(to_markdown(findings, snap, strict))
    else:
        render_text(findings, snap, console, verbose=verbose, strict=strict, timings=timings)
        if save_snapshot:
            console.print(f"snapshot written to {save_snapshot}")
    if fix and snap is not None:
        sys.exit(_fix(snap, findings, matrix, console, deep=deep, dry_run=dry_run, yes=yes, strict=strict,
                      timeout=timeout))
    sys.exit(exit_code(findings, strict))


# >>> --fix / --undo / run (logic in doctor/repair.py) >>>
def _fix(snap: Snapshot, findings: list[Finding], matrix: Matrix, console: Console, deep: bool, dry_run: bool,
         yes: bool, strict: bool, timeout: float) -> int:
    plan = repair.plan(findings, snap, matrix)
    target = repair.Target.of(snap)
    render_plan(plan, target, console)
    if plan.empty or dry_run:
        return exit_code(findings, strict)
    run_pip = bool(plan.pip) and (yes or (sys.stdin.isatty() and click.confirm(
        f"Run {len(plan.pip)} pip command(s) with {plan.python}?", default=False)))
    try:
        steps = repair.apply(plan, target, run_pip=run_pip)
        render_steps("Applied", steps, console)
        if any(s.status == "applied" for s in steps) and target.kind == "venv":
            console.print(f"  undo with: bdv2 doctor --python {target.prefix} --undo; "
                          f"new shells get the edits from {target.prefix}/bin/activate")
        rc = repair.recheck(snap, findings, plan, matrix, os.environ, deep=deep, timeout=timeout)
    except DoctorError as e:
        raise click.ClickException(str(e)) from e
    render_recheck(rc, console)
    return exit_code(rc.findings, strict)


def _undo(python: str | None, console: Console) -> int:
    try:
        target = repair.Target.of(collect(python))
        steps = repair.undo(target)
    except DoctorError as e:
        raise click.ClickException(str(e)) from e
    if steps is None:
        console.print(f"nothing to undo: no journal at {target.journal} (bdv2 doctor --fix has not changed this env)")
    else:
        render_steps("Undone", steps, console)
    return 0


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--python", "python", metavar="PATH", help="Diagnose this interpreter instead of the current one.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(python: str | None, command: tuple[str, ...]) -> None:
    """Run COMMAND with the environment edits `bdv2 doctor --fix` would make:  bdv2 run -- python train.py"""
    try:
        env = repair.repaired_env(load_matrix(), python)
    except DoctorError as e:
        raise click.ClickException(str(e)) from e
    try:
        os.execvpe(command[0], list(command), env)
    except OSError as e:
        raise click.ClickException(f"cannot run {command[0]}: {e.strerror}") from e
# <<< --fix / --undo / run <<<


if __name__ == "__main__":
    main()
