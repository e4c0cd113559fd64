"""`bdv2 matrix ...`: list, show and verify the rows of compat_matrix.toml. Thin: logic is in verify.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Column, Table

from bdv2.console import column, make_console

from ..diagnose import load_matrix
from ..errors import DoctorError
from .load import Matrix, Row
from .verify import constraints, record, verify_row, workflow_yaml

CACHE = Path(os.environ.get("BDV2_CACHE", Path.home() / ".cache" / "bdv2"))
EXAMPLES = """
\b
Examples:
  bdv2 matrix list                       rows, what each holds, how and when verified
  bdv2 matrix show seed-era-cpu          one row in full
  bdv2 matrix constraints cpu-current > c.txt && pip install -c c.txt jax flax
  bdv2 matrix verify cpu-current         fresh venv, install the row, doctor --strict/--deep, smoke run
  bdv2 matrix verify --all --gpu         every row, on a GPU machine
"""


def _load(path: Path | None) -> Matrix:
    try:
        return load_matrix(path)
    except DoctorError as e:
        raise click.ClickException(str(e)) from e


def _row(m: Matrix, name: str) -> Row:
    try:
        return m.row(name)
    except KeyError:
        raise click.BadParameter(f"no row {name!r}; rows: {', '.join(r.name for r in m.rows)}",
                                 param_hint="ROW") from None


@click.group("matrix", epilog=EXAMPLES)
@click.option("--matrix", "matrix_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Use another compat_matrix.toml.")
@click.pass_context
def matrix(ctx: click.Context, matrix_file: Path | None) -> None:
    """Known-good rows of compat_matrix.toml: list, show, pip constraints, verify for real."""
    ctx.obj = matrix_file


@matrix.command("list")
@click.pass_obj
def list_rows(matrix_file: Path | None) -> None:
    """Every row: kind, key versions, how it was verified, and when it last passed here."""
    m = _load(matrix_file)
    try:
        seen = json.loads((CACHE / "verified.json").read_text())
    except (OSError, ValueError):
        seen = {}
    # Row names are what `show`, `constraints` and `verify` take: never cut (no_wrap), whatever the width; a
    # log or pipe gets make_console's wide, unwrapped lines, a terminal folds the other cells instead.
    names = [r.name + (" (default)" if r.default else "") for r in m.rows]
    table = Table(Column("row", no_wrap=True, min_width=max(map(len, names), default=3)),
                  *(column(h) for h in ("kind", "jax", "TensorFlow", "TFP", "verified", "last verify here")))
    for r in m.rows:
        last = seen.get(r.name)
        table.add_row(r.name + (" (default)" if r.default else ""), r.kind.value, _pin(r, ("jax",)),
                      _pin(r, m.groups["tensorflow"]).replace("tensorflow-cpu ", "cpu "),
                      _pin(r, m.groups["tfp"]).replace("tensorflow-probability ", ""),
                      r.verified.value, f"{'pass' if last['ok'] else 'FAIL'} {last['when']}" if last else "-")
    console: Console = make_console()
    if console.is_terminal:  # at least 110 columns, as the table needs; a pipe gets make_console's 400
        console = Console(width=max(console.width, 110))
    console.print(table)


def _pin(row: Row, names: tuple[str, ...]) -> str:
    found = [(n, str(s)) for n, s in row.packages.items() if n in names]
    return " ".join(f"{n} {s.lstrip('=')}" if len(names) > 1 else s.lstrip("=") for n, s in found) or "-"


@matrix.command()
@click.argument("row")
@click.pass_obj
def show(matrix_file: Path | None, row: str) -> None:
    """One row in full: packages, reason, source, verification."""
    r = _row(_load(matrix_file), row)
    click.echo(f"{r.name}: {r.title}\n  kind {r.kind.value}, python {r.python}"
               + (f", extends {r.extends}" if r.extends else "") + (", default" if r.default else ""))
    click.echo(f"  verified: {r.verified.value} - {r.verified_note}")
    if r.known_warnings:
        click.echo(f"  known warnings: {', '.join(r.known_warnings)}")
    click.echo(f"  why: {r.reason}\n  source: {r.source}")
    for link in r.find_links:
        click.echo(f"  pip needs: -f {link}")
    click.echo("  packages:")
    for name, spec in r.packages.items():
        click.echo(f"    {name}{spec}")


@matrix.command("constraints")
@click.argument("row")
@click.pass_obj
def constraints_cmd(matrix_file: Path | None, row: str) -> None:
    """Print a pip constraints file for ROW (use with `pip install -c FILE`)."""
    click.echo(constraints(_row(_load(matrix_file), row)), nl=False)


@matrix.command()
@click.argument("rows", nargs=-1)
@click.option("--all", "all_rows", is_flag=True, help="Every row of the matrix.")
@click.option("--gpu", is_flag=True, help="Also install and probe GPU rows (needs an NVIDIA GPU).")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default=CACHE / "verify",
              show_default=True, help="Where the per-row venvs are built (each is rebuilt from scratch).")
@click.pass_obj
def verify(matrix_file: Path | None, rows: tuple[str, ...], all_rows: bool, gpu: bool, workdir: Path) -> None:
    """Build a fresh venv per ROW, install it, and check it with the doctor and a training smoke run."""
    m = _load(matrix_file)
    if not rows and not all_rows:
        raise click.UsageError("name at least one ROW, or --all")
    chosen = list(m.rows) if all_rows else [_row(m, r) for r in rows]
    verdicts = []
    for r in chosen:
        v = verify_row(r, m, workdir, gpu=gpu, log=lambda s: click.echo(s, err=True))
        verdicts.append(v)
        click.echo(v.line())
    if matrix_file is None:
        record(verdicts, CACHE / "verified.json")
    sys.exit(0 if all(v.ok for v in verdicts) else 1)


@matrix.command()
@click.pass_obj
def workflow(matrix_file: Path | None) -> None:
    """Print the GitHub Actions workflow that verifies every CPU row (.github/workflows/matrix.yml)."""
    click.echo(workflow_yaml(_load(matrix_file)), nl=False)
