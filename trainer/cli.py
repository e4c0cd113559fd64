"""`bdv2 train` and `bdv2 demo`: parse options, call one library function, render, exit.

Importing this module imports click, rich and the stdlib only (neither jax, TensorFlow nor numpy): `--help`
works without the [train] extra, and each command checks for it (bdv2.console.require_extra) before importing
the room's library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from bdv2.console import make_console, progress_interval_option, quiet_native_logs, require_extra, verbose_option

from .errors import TrainerError

TRAIN_MODULES = ("numpy", "PIL", "tensorflow", "jax", "flax", "optax", "orbax", "distrax")
"""Top-level modules of the [train] extra (checked before importing them)."""


def extra_distributions() -> dict[str, str]:
    """The doctor's names for the distributions of missing modules (bdv2.console.require_extra asks only then)."""
    from bdv2.doctor import extra_distributions as from_the_matrix

    return from_the_matrix()

TRAIN_EXAMPLES = """
\b
Examples:
  bdv2 train --config multi_train.yaml --dry-run     the expanded runs, every setting and where it came from
  bdv2 train multi_train.yaml --dry-run --json       the same as JSON
  bdv2 train --config multi_train.yaml               every run, one after another; a summary at the end
  bdv2 train m.yaml --set lr=3e-4 --set encoder=resnetv1-18-bridge   settings for every run, over the YAML's
  bdv2 train --config m.yaml --only gc_bc_kitchen    one run (names as --dry-run prints them)
  bdv2 train --config m.yaml --parallel              one run per GPU listed in cuda_visible_devices
  bdv2 train --config m.yaml --parallel --plan       host RAM, device memory, step and input time, wall time
  bdv2 train --config m.yaml --skip-data-check       launch without the quick data check
  bdv2 train --config m.yaml --slurm --partition gpu --time 2-00:00:00 --gpus 4 --submit
                                                     one Slurm job-array task per run, submitted
  bdv2 train --config m.yaml --only NAME --slurm --nodes 2 --gpus 8
                                                     one run across two nodes (the script only)
\b
A matrix: sweeps any setting besides algos and tasks, e.g. learning_rate: [3.0e-4, 1.0e-3] and seed: [0, 1]
(every combination; run names get _lr0.0003_seed1). Precedence: default < global < matrix < a run's
config_overrides < --set.
\b
Storage: data_root, metadata and save_dir may be local paths or URLs that TensorFlow opens (gs://, file://;
s3:// with tensorflow-io). A URL save_dir holds every file of its runs (config, metrics, events, summary,
log, checkpoints through orbax: gs://, s3://, az://, file:// only); the lock's mutex, the growing log and
metrics and jax's compilation cache stay on this machine in ~/.cache/bdv2/remote (BDV2_LOCAL_DIR), the log
and metrics being put into the run folder at each checkpoint and at the end. Its free space is not checked.
\b
Ctrl-C (or SIGTERM/SIGUSR1): each running run saves its current step and stops; the same command resumes.
Exit codes: 0 every run finished, 1 a run failed (or the preflight or the data check found errors, or a run
is being trained by another launch), 2 usage error, 75 runs stopped by SIGTERM/SIGUSR1 (each saved), 130
Ctrl-C (each saved).
"""


@click.command("train", epilog=TRAIN_EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config_arg", metavar="[CONFIG]", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A multi_train.yaml (global: + matrix: or runs:); or give it as the argument.")
@click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE",
              help="A setting for every run, over the YAML's (repeatable; keys as under global:, or lr, "
                   "batch_size, steps, or the fork's config.agent_kwargs.* names).")
@click.option("--dry-run", is_flag=True,
              help="Print the expanded runs: every resolved setting with where it came from, data, environment.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as one JSON object.")
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
@click.option("--slurm", is_flag=True,
              help="Write an sbatch script for the runs instead of training here: one job-array task per run (or "
                   "with --nodes N one run across N nodes), srun, the doctor's environment fixes, "
                   "--signal=USR1@120 (each worker saves, then the job requeues itself) and --requeue. It goes to "
                   "<save_dir>/slurm/<config>.sbatch, beside the jobs' logs (for a URL save_dir, to its local side in "
                   "~/.cache/bdv2/remote).")
@click.option("--submit", is_flag=True, help="With --slurm: submit the script with sbatch.")
@click.option("--partition", metavar="NAME", help="With --slurm: the partition  [default: the cluster's]")
@click.option("--time", "time_limit", metavar="LIMIT",
              help="With --slurm: the time limit, e.g. 12:00:00 or 2-00:00:00  [default: the partition's]")
@click.option("--gpus", type=click.IntRange(min=0), metavar="N",
              help="With --slurm: GPUs per node  [default: as many as cuda_visible_devices lists, else 1; none "
                   "for runs on the CPU]")
@click.option("--nodes", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --slurm: nodes; more than 1 trains one run (--only NAME) across them.")
@click.option("--cpus-per-task", type=click.IntRange(min=1), default=8, show_default=True,
              help="With --slurm: CPU cores per task (the input pipeline runs on them).")
@click.option("--mem", metavar="SIZE", help="With --slurm: memory per node, e.g. 64G  [default: the partition's]")
@click.option("--sbatch-arg", "sbatch_args", multiple=True, metavar="OPTION",
              help="With --slurm: one more sbatch option (repeatable), e.g. --sbatch-arg=--account=lab")
@verbose_option
@progress_interval_option
def train(config_arg: Path | None, config_file: Path | None, set_items: tuple[str, ...], dry_run: bool,
          as_json: bool, only: tuple[str, ...], resume: bool, plan: bool, force: bool, parallel: bool,
          fail_fast: bool, skip_data_check: bool, slurm: bool, submit: bool, partition: str | None,
          time_limit: str | None, gpus: int | None, nodes: int, cpus_per_task: int, mem: str | None,
          sbatch_args: tuple[str, ...], verbose: bool, progress_interval: float) -> None:
    """Train every run of a multi_train.yaml, each in its own process, the doctor in front."""
    slurm_opts = _slurm_options(slurm, submit, partition, time_limit, gpus, nodes, cpus_per_task, mem, sbatch_args)
    if slurm and parallel:
        raise click.UsageError("--parallel is for one machine; with --slurm each run gets a job-array task of its own")
    if (config_arg is None) == (config_file is None):
        raise click.UsageError("give the config once: `bdv2 train CONFIG` or `bdv2 train --config CONFIG`")
    if as_json and not dry_run:
        raise click.UsageError("--json goes with --dry-run (a launch prints its progress and summary as text)")
    path = config_arg if config_arg is not None else config_file
    assert path is not None  # exactly one of the two, checked above
    require_extra("bdv2 train", "train", TRAIN_MODULES, extra_distributions)
    quiet_native_logs(verbose=verbose)
    from . import config, launch

    console = make_console(verbose=verbose)
    pre = launch.doctor_preflight()
    try:  # every check, devices included, before any run directory exists
        cli = config.parse_set(set_items)
        if slurm_opts is None:
            view = pre.view(os.environ, parallel)
        else:  # the devices of a node of the job, not of this machine
            from .slurm import job_view

            view = job_view(pre, slurm_opts, os.environ)
        exp = config.only(config.load(path, view=view, cli=cli), only)
    except TrainerError as e:
        raise click.ClickException(str(e)) from e
    if dry_run and as_json:
        import json

        from .report import dry_run_plan

        click.echo(json.dumps(dry_run_plan(exp, pre, os.environ), indent=2, default=str))
        return
    if dry_run:
        launch.render_preflight(pre, console)
        launch.render_dry_run(exp, pre, console, os.environ)
        return
    if plan:
        sys.exit(launch.plan_experiments(exp, pre, console, parallel=parallel, verbose=verbose))
    if not skip_data_check:
        from . import datacheck

        verdicts = datacheck.check_runs(list(exp.runs), resume=resume)
        datacheck.render(verdicts, console)
        if any(v.errors for v in verdicts):
            console.print("[red]data check: errors above; nothing launched[/] (fix the data or the metadata, or "
                          "pass --skip-data-check to launch anyway)")
            sys.exit(1)
    if slurm_opts is not None:
        from .slurm import slurm_experiments

        sys.exit(slurm_experiments(exp, pre, console, slurm_opts, resume=resume, submit_job=submit, force=force,
                                   verbose=verbose))
    sys.exit(launch.run_experiments(exp, pre, console, resume=resume, force=force, parallel=parallel,
                                    fail_fast=fail_fast, verbose=verbose, progress_interval=progress_interval))


def _slurm_options(slurm: bool, submit: bool, partition: str | None, time_limit: str | None, gpus: int | None,
                   nodes: int, cpus_per_task: int, mem: str | None, sbatch_args: tuple[str, ...]) -> Any:
    """The job's options (slurm.SlurmOptions) with --slurm; None without it, where its options are refused."""
    from .slurm import SlurmError, SlurmOptions

    opts = SlurmOptions(partition, time_limit, gpus, nodes, cpus_per_task, mem, extra=sbatch_args)
    if not slurm:
        given = [name for name, used in (("--submit", submit), ("--partition", partition), ("--time", time_limit),
                                         ("--gpus", gpus is not None), ("--nodes", nodes != 1),
                                         ("--cpus-per-task", cpus_per_task != 8), ("--mem", mem),
                                         ("--sbatch-arg", sbatch_args)) if used]
        if given:
            raise click.UsageError(f"{', '.join(given)}: only with --slurm")
        return None
    try:
        opts.check()
    except SlurmError as e:
        raise click.UsageError(str(e)) from None
    return opts


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="A new or empty folder for the sample data, the runs and learning_curves.png "
                   "(train and validation action MSE).")
@click.option("--steps", type=int, default=None, help="Steps per run (default: the example config's).")
@verbose_option
@progress_interval_option
def demo(out: Path, steps: int | None, verbose: bool, progress_interval: float) -> None:
    """The main job end to end on the built-in sample data: doctor, sample, convert, stats, train, plot."""
    require_extra("bdv2 demo", "train", TRAIN_MODULES, extra_distributions)
    quiet_native_logs(verbose=verbose)
    from .demo import run_demo

    try:
        sys.exit(run_demo(out, make_console(verbose=verbose), steps=steps, verbose=verbose,
                          progress_interval=progress_interval))
    except TrainerError as e:
        raise click.ClickException(str(e)) from e


PLOT_EXAMPLES = """
\b
Examples:
  bdv2 plot runs/gc_bc_kitchen runs/bc_kitchen             both runs on one figure: runs/learning_curves.png
  bdv2 plot runs/* --out curves.png --metric loss --log-y   every run's loss, on a log scale
\b
Exit codes: 0 written, 1 a directory is not a run (no metrics.jsonl) or nothing to draw, 2 usage error.
"""


@click.command("plot", epilog=PLOT_EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The PNG to write (default: learning_curves.png in the first run's parent folder).")
@click.option("--metric", default="mse", show_default=True,
              help="A key of metrics.jsonl: mse (action MSE), loss, or any other the runs logged.")
@click.option("--log-y", is_flag=True, help="Logarithmic y axis.")
def plot(run_dirs: tuple[Path, ...], out: Path | None, metric: str, log_y: bool) -> None:
    """Train (solid) and validation (dashed) curves of one or several runs on one figure, from each run's
    metrics.jsonl. `bdv2 train` writes the same figure for its runs to <save_dir>/learning_curves.png."""
    require_extra("bdv2 plot", "train", ("matplotlib",), extra_distributions)
    from .plot import CURVES_FILE, plot_runs

    target = out if out is not None else run_dirs[0].resolve().parent / CURVES_FILE
    try:
        written = plot_runs(list(run_dirs), target, metric=metric, log_y=log_y)
    except TrainerError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"wrote {written}")
