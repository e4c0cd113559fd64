"""`bdv2 train` and `bdv2 demo`: parse options, call one library function, render, exit.

Importing this module imports click, rich and the stdlib only (neither jax, TensorFlow nor numpy): `--help`
works without the [train] extra, and each command checks for it (bdv2.console.require_extra) before importing
the room's library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from bdv2.console import make_console, progress_interval_option, quiet_native_logs, require_extra, verbose_option

from .errors import TrainerError

TRAIN_MODULES = ("numpy", "PIL", "tensorflow", "jax", "flax", "optax", "orbax", "distrax")
"""Top-level modules of the [train] extra (checked before importing them)."""

TRAIN_EXAMPLES = """
\b
Examples:
  bdv2 train --config multi_train.yaml --dry-run     the expanded runs, their settings and environment
  bdv2 train --config multi_train.yaml               every run, one after another; a summary at the end
  bdv2 train --config m.yaml --only gc_bc_kitchen    one run (names as --dry-run prints them)
  bdv2 train --config m.yaml --parallel              one run per GPU listed in cuda_visible_devices
  bdv2 train --config m.yaml --parallel --plan       host RAM, device memory, step and input time, wall time
  bdv2 train --config m.yaml --skip-data-check       launch without the quick data check
\b
Ctrl-C (or SIGTERM/SIGUSR1): each running run saves its current step and stops; the same command resumes.
Exit codes: 0 every run finished, 1 a run failed (or the preflight or the data check found errors, or a run
is being trained by another launch), 2 usage error, 75 runs stopped by SIGTERM/SIGUSR1 (each saved), 130
Ctrl-C (each saved).
"""


@click.command("train", epilog=TRAIN_EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A multi_train.yaml (global: + matrix: or runs:).")
@click.option("--dry-run", is_flag=True, help="Print the expanded runs with resolved settings and environment.")
@click.option("--only", multiple=True, metavar="NAME", help="Run only this run (repeatable).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from each run's latest checkpoint; --no-resume renames an old run dir aside.")
@click.option("--plan", "plan", is_flag=True,
              help="Estimate each run's host RAM, device memory, step and input time and wall time (compiles and "
                   "times a few steps), compare with this machine; launch nothing.")
@click.option("--force", is_flag=True,
              help="Launch even when the doctor's preflight finds errors or the plan says it does not fit.")
@click.option("--parallel", is_flag=True, help="One run per GPU of cuda_visible_devices at a time.")
@click.option("--fail-fast", is_flag=True, help="Stop launching runs after the first failure.")
@click.option("--skip-data-check", is_flag=True,
              help="Launch without the quick data check (bdv2 data check --quick on each run's sources, against "
                   "its metadata and init_from checkpoint).")
@verbose_option
@progress_interval_option
def train(config_file: Path, dry_run: bool, only: tuple[str, ...], resume: bool, plan: bool, force: bool,
          parallel: bool, fail_fast: bool, skip_data_check: bool, verbose: bool, progress_interval: float) -> None:
    """Train every run of a multi_train.yaml, each in its own process, the doctor in front."""
    require_extra("bdv2 train", "train", TRAIN_MODULES)
    quiet_native_logs(verbose=verbose)
    from . import config, launch

    console = make_console(verbose=verbose)
    pre = launch.doctor_preflight()
    try:  # every check, devices included, before any run directory exists
        exp = config.only(config.load(config_file, view=pre.view(os.environ, parallel)), only)
    except TrainerError as e:
        raise click.ClickException(str(e)) from e
    if dry_run:
        launch.render_preflight(pre, console)
        launch.render_dry_run(exp, pre, console, os.environ)
        return
    if plan:
        sys.exit(launch.plan_experiments(exp, pre, console, parallel=parallel, verbose=verbose))
    if not skip_data_check:
        from . import datacheck

        verdicts = datacheck.check_runs(list(exp.runs))
        datacheck.render(verdicts, console)
        if any(v.errors for v in verdicts):
            console.print("[red]data check: errors above; nothing launched[/] (fix the data or the metadata, or "
                          "pass --skip-data-check to launch anyway)")
            sys.exit(1)
    sys.exit(launch.run_experiments(exp, pre, console, resume=resume, force=force, parallel=parallel,
                                    fail_fast=fail_fast, verbose=verbose, progress_interval=progress_interval))


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="A new or empty folder for the sample data, the runs and learning_curves.png "
                   "(train and validation action MSE).")
@click.option("--steps", type=int, default=None, help="Steps per run (default: the example config's).")
@verbose_option
@progress_interval_option
def demo(out: Path, steps: int | None, verbose: bool, progress_interval: float) -> None:
    """The main job end to end on the built-in sample data: doctor, sample, convert, stats, train, plot."""
    require_extra("bdv2 demo", "train", TRAIN_MODULES)
    quiet_native_logs(verbose=verbose)
    from .demo import run_demo

    try:
        sys.exit(run_demo(out, make_console(verbose=verbose), steps=steps, verbose=verbose,
                          progress_interval=progress_interval))
    except TrainerError as e:
        raise click.ClickException(str(e)) from e
