"""What a user sees of their runs' progress: `bdv2 train` writes TensorBoard event files through TensorFlow's
own summary writer (read back here with TensorFlow's event reader, and TensorBoard's own loader when it is
installed), a learning_curves.png for the runs of every launch, and `bdv2 plot RUN_DIR...` draws several runs
on one figure; a wandb_project without wandb installed is refused before anything runs."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bdv2.cli import main

from . import helpers

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def launched(tfdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`bdv2 train` on two short runs (bc and gc_bc on one task); returns save_dir."""
    tmp = tmp_path_factory.mktemp("curves")
    g = helpers.base_global(tfdata, tmp / "runs", num_steps=4, log_interval=2, eval_interval=2, save_interval=4,
                            augment=False)
    cfg = helpers.write_yaml(tmp / "m.yaml", {"global": g, "matrix": {"algos": ["bc", "gc_bc"], "tasks": ["sink"]}})
    res = CliRunner().invoke(main, ["train", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert f"learning curves: {tmp / 'runs' / 'learning_curves.png'}" in res.output
    return tmp / "runs"


def test_tensorboard_files_read_back_with_tensorflows_reader(launched: Path) -> None:
    import tensorflow as tf

    [event_file] = (launched / "bc_sink" / "tensorboard").glob("events.out.tfevents.*")
    scalars: dict[str, list[tuple[int, float]]] = {}
    for event in tf.compat.v1.train.summary_iterator(str(event_file)):
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    assert [s for s, _ in scalars["train/loss"]] == [2, 4]
    assert [s for s, _ in scalars["val/loss"]] == [2, 4]
    assert all(v == v for _, v in scalars["train/mse"])  # finite numbers, not placeholders
    from bdv2.trainer.metrics import read_metrics

    logged = [(r["step"], r["loss"]) for r in read_metrics(launched / "bc_sink") if r["split"] == "train"]
    assert [s for s, _ in logged] == [2, 4]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([v for _, v in logged])  # as metrics.jsonl


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_tensorboard_loads_the_run_directory(launched: Path) -> None:
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer().AddRunsFromDirectory(str(launched))  # what `tensorboard --logdir runs/` does
    mux.Reload()
    runs = mux.Runs()
    assert set(runs) == {os.path.join("bc_sink", "tensorboard"), os.path.join("gc_bc_sink", "tensorboard")}
    assert "train/loss" in runs[os.path.join("bc_sink", "tensorboard")]["tensors"]
    scalars = mux.PluginRunToTagToContent("scalars")  # what the Scalars dashboard lists
    assert {"train/loss", "val/loss", "train/mse"} <= set(scalars[os.path.join("gc_bc_sink", "tensorboard")])
    assert [e.step for e in mux.Tensors(os.path.join("bc_sink", "tensorboard"), "train/loss")] == [2, 4]


def test_every_launch_writes_a_figure_of_its_runs(launched: Path) -> None:
    assert (launched / "learning_curves.png").read_bytes()[:8] == PNG


def test_plot_draws_several_runs_on_one_figure(launched: Path, tmp_path: Path) -> None:
    out = tmp_path / "both.png"
    res = CliRunner().invoke(main, ["plot", str(launched / "bc_sink"), str(launched / "gc_bc_sink"),
                                    "--out", str(out), "--metric", "loss"])
    assert res.exit_code == 0 and f"wrote {out}" in res.output, res.output
    assert out.read_bytes()[:8] == PNG
    from matplotlib.image import imread

    assert imread(out).shape[:2] == (450, 800)  # 8 x 4.5 inches at 100 dpi


def test_plot_names_a_folder_that_is_not_a_run(launched: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["plot", str(launched / "bc_sink"), str(tmp_path)])
    assert res.exit_code == 1 and f"{tmp_path}: no metrics.jsonl here" in res.output
    res = CliRunner().invoke(main, ["plot", str(launched / "bc_sink"), "--metric", "acuracy"])
    assert res.exit_code == 1 and "no run logged 'acuracy' yet" in res.output and "loss" in res.output


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_wandb_project_without_wandb_is_refused_before_launch(tfdata: Path, tmp_path: Path) -> None:
    g = helpers.base_global(tfdata, tmp_path / "runs", num_steps=4, wandb_project="bridge")
    cfg = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "matrix": {"algos": ["bc"], "tasks": ["sink"]}})
    res = CliRunner().invoke(main, ["train", "--config", str(cfg)])
    assert res.exit_code == 1 and not (tmp_path / "runs").exists()
    assert f"{cfg}: global.wandb_project: 'bridge' is set but wandb is not installed" in res.output
    assert "pip install wandb" in res.output
