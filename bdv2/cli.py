"""The `bdv2` command: a click group wiring the rooms together. No logic lives here.

Importing this module imports neither jax nor TensorFlow (tests/test_cli.py checks it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import click
from rich.console import Console

from bdv2 import __version__
from bdv2.doctor import examine, exit_code, load_matrix
from bdv2.doctor.errors import DoctorError
from bdv2.doctor.report import render_text, to_json, to_markdown
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

\b
Exit codes: 0 healthy, 1 an error remains (or a warning with --strict), 2 usage error.
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--strict", is_flag=True, help="Warnings also make the exit code 1.")
@click.option("-v", "--verbose", is_flag=True, help="Show evidence, sources and timings.")
@click.option("--matrix", "matrix_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Use another compat_matrix.toml (default: the one shipped with bdv2).")
def doctor(python: str | None, snapshot_file: Path | None, save_snapshot: Path | None, deep: bool, timeout: float,
           log_file: IO[str] | None, as_json: bool, markdown: bool, strict: bool, verbose: bool,
           matrix_file: Path | None) -> None:
    """Check the installed JAX/TF/TFP/CUDA stack against compat_matrix.toml and say how to fix it."""
    if as_json and markdown:
        raise click.UsageError("choose one of --json and --markdown")
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
            ex = examine(python=python, snapshot_file=snapshot_file, deep=deep, matrix=matrix, timeout=timeout)
            snap, findings, timings = ex.snapshot, ex.findings, ex.timings
            if save_snapshot:
                snap.save(save_snapshot)
    except DoctorError as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(to_json(findings, snap, strict, timings))
    elif markdown:
        click.echo(to_markdown(findings, snap, strict))
    else:
        render_text(findings, snap, console, verbose=verbose, strict=strict, timings=timings)
        if save_snapshot:
            console.print(f"snapshot written to {save_snapshot}")
    sys.exit(exit_code(findings, strict))


if __name__ == "__main__":
    main()
