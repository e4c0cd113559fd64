"""`bdv2 eval`: a trained run on held-out trajectories, against a constant-mean baseline (evaluate.py).

Importing this module imports click, rich and the stdlib only (neither jax, TensorFlow nor numpy), as
trainer/cli.py: `--help` works without the [train] extra, which the command checks for before importing
the library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bdv2.console import (
    PathOrUrl,
    Ticker,
    column,
    make_console,
    progress_interval_option,
    quiet_native_logs,
    require_extra,
    verbose_option,
)
from bdv2.data_tools.errors import DataToolsError

from .cli import TRAIN_MODULES, extra_distributions
from .errors import TrainerError

EVAL_EXAMPLES = """
\b
Examples:
  bdv2 eval runs/gc_bc_kitchen --data /data/bdv2_tfrecord              every val/out.tfrecord below it
  bdv2 eval runs/gc_bc_kitchen --data /data/bdv2_tfrecord/kitchen --trajectories 20 --json
  bdv2 eval runs/bc_all --data /data/bridge_dataset/1.0.0 --split val   an RLDS dataset directory
  bdv2 eval runs/bc_all --data some/val/out.tfrecord --out /tmp/eval    one file; eval.json + PNG in /tmp/eval
  bdv2 eval runs/gc_bc_kitchen --data /data/tfr --compare runs/bc_kitchen   two runs, paired on the same data
  bdv2 eval runs/bc_all --data gs://bucket/bdv2_tfrecord             a URL TensorFlow opens (gs://, file://)
\b
Goal-conditioned runs get each trajectory's final frame as the goal. Writes eval.json and eval_actions.png
(predicted vs true actions of the first trajectories) into --out (default: the run directory).
Trajectories are the unit: 95 % bootstrap intervals resample whole trajectories, the policy and the baseline
are compared with a paired t-test on per-trajectory figures, and "not distinguishable with N trajectories"
comes with about how many would tell the difference apart (--difference D sizes it for another difference).
Exit codes: 0 evaluated, 1 the run or the data cannot be used, 2 usage error.
"""


@click.command("eval", epilog=EVAL_EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", type=PathOrUrl(file_okay=False, distributions=extra_distributions))
@click.option("--data", "data", required=True, type=PathOrUrl(distributions=extra_distributions),
              help="Held-out data: a TFRecord file, a converted tree (<task>/<split>/out.tfrecord) or an RLDS "
                   "dataset directory; a local path or a URL (gs://...).")
@click.option("--split", default="val", show_default=True, help="The split to read under --data.")
@click.option("--trajectories", type=click.IntRange(min=1), default=None, metavar="N",
              help="Evaluate the first N trajectories only (default: all).")
@click.option("--out", "out", type=PathOrUrl(file_okay=False, distributions=extra_distributions), default=None,
              help="Folder for eval.json and eval_actions.png (default: RUN_DIR).")
@click.option("--plot-trajectories", type=click.IntRange(min=0), default=3, show_default=True, metavar="K",
              help="Trajectories drawn in the PNG (0: no plot).")
@click.option("--difference", type=click.FloatRange(min=0, min_open=True), default=None, metavar="D",
              help="Also say how many trajectories would show a normalised-MSE difference of D between policy "
                   "and baseline (80 % power, paired t-test at 5 %; default: the difference observed).")
@click.option("--compare", "compare", type=PathOrUrl(file_okay=False, distributions=extra_distributions),
              default=None,
              metavar="RUN_DIR2", help="Also score another run on the same trajectories and compare the two with "
                                       "the paired test (its sentence names both runs).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@verbose_option
@progress_interval_option
def eval_run(run_dir: Path, data: Path, split: str, trajectories: int | None, out: Path | None,
             plot_trajectories: int, difference: float | None, compare: Path | None, as_json: bool, verbose: bool,
             progress_interval: float) -> None:
    """Score RUN_DIR's latest checkpoint on held-out trajectories: per-dimension action MSE (robot units) and
    gripper accuracy, beside a baseline that always predicts the training action mean."""
    require_extra("bdv2 eval", "train", TRAIN_MODULES, extra_distributions)
    quiet_native_logs(verbose=verbose)
    from . import data as pipeline
    from . import evaluate

    pipeline.hide_gpus_from_tf()
    err = make_console(stderr=True, verbose=verbose)
    ticker = Ticker(err, "evaluating", total=trajectories, unit="trajectories", interval_s=progress_interval)
    try:
        report = evaluate.evaluate(run_dir, data, split, trajectories, out, plot_trajectories,
                                   progress=lambda done, _total: ticker.update(done), difference=difference,
                                   compare=compare)
    except (TrainerError, DataToolsError) as e:
        raise click.ClickException(str(e)) from e
    ticker.finish()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render(report.to_dict(), make_console(verbose=verbose))


def render(d: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    console.print(f"{d['run_dir']} ({d['algo']}, {Path(d['checkpoint']).name}) on {d['data']} [{d['split']}]: "
                  f"{d['trajectories']} trajectories, {d['steps']} steps; goal: {d['goal']}", highlight=False,
                  markup=False)
    table = Table(column("action"), column("policy MSE", right=True), column("baseline MSE", right=True),
                  column("ratio", right=True))
    pol, base = d["policy"], d["baseline"]
    stats = {s["figure"]: s for s in d["statistics"]}
    for dim, mse in pol["mse"].items():
        b = base["mse"][dim]
        table.add_row(dim, f"{mse:.3g}", f"{b:.3g}", f"{mse / b:.2f}" if b > 0 else "-")
    mse_s, grip_s = stats["normalised MSE"], stats["gripper accuracy"]
    table.add_row("mean / std^2", f"{pol['mse_normalised']:.3g}{_ci(mse_s['policy_ci95'], '.3g')}",
                  f"{base['mse_normalised']:.3g}{_ci(mse_s['baseline_ci95'], '.3g')}",
                  f"{pol['mse_normalised'] / base['mse_normalised']:.2f}" if base["mse_normalised"] > 0 else "-")
    table.add_row("gripper accuracy", f"{pol['gripper_accuracy']:.1%}{_ci(grip_s['policy_ci95'], '.0%')}",
                  f"{base['gripper_accuracy']:.1%}{_ci(grip_s['baseline_ci95'], '.0%')}", "")
    console.print(table)
    console.print("[brackets]: 95 % bootstrap intervals over trajectories", highlight=False, markup=False)
    for s in d["statistics"]:
        console.print(sentence(s), highlight=False, markup=False)
    console.print(f"Files: {', '.join(d['files'])}", highlight=False, markup=False)


def _ci(ci: list[float] | None, fmt: str) -> str:
    return f" [{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if ci else ""


def sentence(s: dict[str, Any]) -> str:
    """One comparison of eval.json's "statistics", as a sentence (eval_stats.Comparison.sentence's words)."""
    from .eval_stats import comparison_from_dict

    return comparison_from_dict(s).sentence()
