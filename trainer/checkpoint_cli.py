"""`bdv2 checkpoint import|export`: checkpoints of the original BridgeData V2 code in and out of bdv2.

Importing this module imports click, rich and the stdlib only (as trainer/cli.py); each command checks for
the [train] extra before importing the library (checkpoint_io.py).
"""

from __future__ import annotations

from pathlib import Path

import click

from bdv2.console import make_console, quiet_native_logs, require_extra, verbose_option

from .cli import TRAIN_MODULES, extra_distributions
from .errors import TrainerError

FORMATS = ("jaxrl_m",)

CHECKPOINT_EXAMPLES = """
\b
Examples:
  bdv2 checkpoint import --from jaxrl_m gcbc/checkpoint_300000 --config gcbc/config.json --out runs/gcbc
  bdv2 checkpoint export --to jaxrl_m runs/gc_bc_kitchen --out exported/
\b
jaxrl_m: https://github.com/rail-berkeley/bridge_data_v2 (experiments/train.py writes the checkpoints,
experiments/eval.py reads them with the config JSON). An imported directory works with
bdv2.trainer.policy.load_policy and as a run's init_from:.
"""


@click.group("checkpoint", epilog=CHECKPOINT_EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
def checkpoint() -> None:
    """Import and export checkpoints of the original BridgeData V2 code (jaxrl_m)."""


@checkpoint.command("import", epilog=CHECKPOINT_EXAMPLES)
@click.option("--from", "fmt", type=click.Choice(FORMATS), required=True, help="The checkpoint's format.")
@click.argument("ckpt", type=click.Path(path_type=Path, exists=True))
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The run's config JSON (agent, agent_kwargs, encoder, ..., bridgedata_config).")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="A new bdv2 run directory.")
@verbose_option
def import_(fmt: str, ckpt: Path, config_file: Path, out: Path, verbose: bool) -> None:
    """Turn CKPT (a checkpoint_<step> file or directory of the original) into a bdv2 run directory."""
    require_extra("bdv2 checkpoint import", "train", TRAIN_MODULES, extra_distributions)
    quiet_native_logs(verbose=verbose)
    from .checkpoint_io import import_jaxrl_m

    try:
        run_dir = import_jaxrl_m(ckpt, config_file, out)
    except TrainerError as e:
        raise click.ClickException(str(e)) from e
    make_console(verbose=verbose).print(f"imported {ckpt} ({fmt}) -> {run_dir}")


@checkpoint.command("export", epilog=CHECKPOINT_EXAMPLES)
@click.option("--to", "fmt", type=click.Choice(FORMATS), required=True, help="The format to write.")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="A folder for checkpoint_<step> and config.json.")
@verbose_option
def export(fmt: str, run_dir: Path, out: Path, verbose: bool) -> None:
    """Write RUN_DIR's latest checkpoint (or the step directory given) for the original's eval.py."""
    require_extra("bdv2 checkpoint export", "train", TRAIN_MODULES, extra_distributions)
    quiet_native_logs(verbose=verbose)
    from .checkpoint_io import export_jaxrl_m

    try:
        file = export_jaxrl_m(run_dir, out)
    except TrainerError as e:
        raise click.ClickException(str(e)) from e
    make_console(verbose=verbose).print(f"exported {run_dir} ({fmt}) -> {file} and {out / 'config.json'}")
