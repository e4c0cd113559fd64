"""`bdv2 demo`: the main job end to end on the built-in sample data (README: its time, measured).

    doctor -> data sample -> raw-to-tfrecord (64 px) -> data stats -> train configs/sample.yaml
    (gc_bc and bc, tiny encoder) -> summary table -> validation action MSE, first and last evaluation,
    per run -> learning_curves.png (train and validation action MSE per run)

The sample's actions follow from its images, and in two of its tasks which object a trajectory is about is
only visible in a later frame, so the goal-conditioned run learns what the plain one cannot: its validation
MSE falls to under half of where it starts, and below the bc run's (tests/trainer/test_demo_learns.py).
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from rich.console import Console

from bdv2.console import PROGRESS_INTERVAL_S, heading
from bdv2.fsutil import write_atomic, write_json_atomic

from .errors import TrainerError
from .plot import CURVES_FILE

IM_SIZE = 64
TRAJECTORIES, FRAMES = 16, 20
"""Sample size: per task dir (3 of them; 0.9 of each go to train), observations per trajectory."""
CURVES = CURVES_FILE


def sample_config() -> Path:
    """The example multi_train.yaml shipped with the package."""
    return Path(str(resources.files("bdv2.trainer") / "configs" / "sample.yaml"))


def _build_data(out: Path, console: Console, trajectories: int, frames: int) -> Path:
    """Steps 2-4: the sample raw data, its TFRecords at IM_SIZE px and their metadata.json; the TFRecord root."""
    from bdv2.data_tools.convert import raw_to_tfrecord
    from bdv2.data_tools.errors import DataToolsError
    from bdv2.data_tools.sample import write_sample
    from bdv2.data_tools.summary import compute_stats

    try:
        heading(console, "2/5 bdv2 data sample")
        raw = out / "raw"
        if raw.exists():
            console.print(f"reusing the sample raw data in {raw}")
        else:
            partial = out / "raw.partial"  # renamed when complete, so an interrupted sample is redone
            if partial.exists():
                shutil.rmtree(partial)
            # One camera: training reads images0 only (`bdv2 data sample` writes three).
            write_sample(partial, n_trajectories=trajectories, n_frames=frames, n_cameras=1).rename(raw)
            console.print(f"sample raw data in {raw}: 3 task dirs x {trajectories} trajectories x {frames} frames")
        heading(console, f"3/5 bdv2 data raw-to-tfrecord --im_size {IM_SIZE}")
        tfr = out / "tfrecord"
        report = raw_to_tfrecord(raw, tfr, depth=5, num_workers=2, im_size=IM_SIZE)
        console.print(f"{report.frames} frames in {report.seconds:.1f} s -> {tfr}")
        heading(console, "4/5 bdv2 data stats")
        write_json_atomic(tfr / "metadata.json", compute_stats(tfr), indent=2, sort_keys=False)
        console.print(f"normalisation statistics in {tfr / 'metadata.json'}")
    except DataToolsError as e:
        raise TrainerError(f"demo data step failed: {e}") from e
    return tfr


def val_mse(runs_dir: Path, name: str) -> list[tuple[int, float]]:
    """(step, validation action MSE) of every evaluation of run ``name``."""
    from .metrics import read_metrics
    from .plot import series

    return series(read_metrics(runs_dir / name), "val", "mse")


def _print_mse(runs_dir: Path, names: list[str], console: Console) -> None:
    """The demo's point: validation action MSE, first and last evaluation of each run."""
    for name in names:
        pts = val_mse(runs_dir, name)
        if len(pts) >= 2:
            (s0, m0), (s1, m1) = pts[0], pts[-1]
            console.print(f"{name}: validation action MSE {m0:.3f} at step {s0} -> {m1:.3f} at step {s1}")


def run_demo(out: Path, console: Console, steps: int | None = None, verbose: bool = False,
             progress_interval: float = PROGRESS_INTERVAL_S, trajectories: int = TRAJECTORIES,
             frames: int = FRAMES) -> int:
    """Run the demo into ``out``; returns the exit code (0 when both runs finished).

    ``steps`` replaces the config's num_steps and learning-rate decay (evaluating twenty times, the first after
    a twentieth of them); ``trajectories`` and ``frames`` size the sample (when ``out`` has none yet).

    Raises:
        TrainerError: ``out`` holds files the demo did not make, or a data step failed.
    """
    from . import config, launch

    # A second run reuses what the first built (finished conversions are skipped, finished runs resume at
    # their last step); a folder the demo did not make is never written into.
    marker = out / ".bdv2-demo"
    if out.exists() and any(out.iterdir()) and not marker.exists():
        raise TrainerError(f"{out}: not empty and not made by `bdv2 demo`; give a new or empty folder")
    write_atomic(marker, "made by bdv2 demo; re-running the demo here reuses its data and runs\n")
    heading(console, "1/5 bdv2 doctor (static checks)")
    pre = launch.doctor_preflight()
    launch.render_preflight(pre, console)
    console.print(f"{len(pre.errors)} error(s), {len(pre.findings) - len(pre.errors)} other finding(s)")
    tfr = _build_data(out, console, trajectories, frames)
    heading(console, f"5/5 bdv2 train --config {sample_config()}")
    overrides: dict[str, object] = {"data_root": str(tfr), "save_dir": str(out / "runs")}
    if steps:
        every = max(1, steps // 20)
        overrides.update(num_steps=steps, eval_interval=every, log_interval=every, save_interval=steps,
                         decay_steps_bc=steps, decay_steps_gc_bc=steps)
    exp = config.load(sample_config(), overrides, view=pre.view(os.environ))
    # Both runs at once on the CPU: one's start-up (imports, compile) overlaps the other's training.
    cpu_parallel = 2 if all(r.settings.jax_platform_name == "cpu" for r in exp.runs) else 1
    rc = launch.run_experiments(exp, pre, console, resume=True, force=True, parallel=False, fail_fast=False,
                                verbose=verbose, progress_interval=progress_interval, cpu_parallel=cpu_parallel)
    names = [r.name for r in exp.runs]
    _print_mse(out / "runs", names, console)
    from .plot import PlotError, plot_runs

    try:
        console.print(f"learning curves: {plot_runs([out / 'runs' / n for n in names], out / CURVES)}")
    except PlotError as e:
        console.print(f"learning curves: not drawn: {e}", markup=False, highlight=False)
    return rc
