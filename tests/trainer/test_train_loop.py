"""Agents and the loop on CPU: proprio flattening for every shape, one short run per algorithm whose loss
decreases, kill-and-resume continuity (deterministic given seed and step), NaN detection naming the step window."""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bdv2.trainer import augment, config, loop, model
from bdv2.trainer.errors import NonFiniteError
from bdv2.trainer.metrics import read_metrics
from bdv2.trainer.networks import Encoding, TinyEncoder, flatten_proprio

from . import helpers


def _run(tfdata: Path, tmp_path: Path, algo: str, **over: Any) -> model.Run:
    tmp_path.mkdir(parents=True, exist_ok=True)
    g = helpers.base_global(tfdata, tmp_path / "runs", **over)
    y = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "matrix": {"algos": [algo], "tasks": ["kitchen"]}})
    return config.load(y).runs[0]


@pytest.mark.parametrize("shape", [(4, 7), (4, 1, 7), (4, 3, 7)], ids=["B,P", "B,1,P", "B,T,P"])
def test_proprio_is_flattened_before_concatenation(shape: tuple[int, ...]) -> None:
    assert flatten_proprio(jnp.zeros(shape)).shape == (4, int(np.prod(shape[1:])))
    frames = shape[1] if len(shape) == 3 else 1
    image_shape = (4, frames, 8, 8, 3) if len(shape) == 3 else (4, 8, 8, 3)
    obs = {"image": jnp.zeros(image_shape, jnp.uint8), "proprio": jnp.zeros(shape)}
    goals = {"image": jnp.zeros((4, 8, 8, 3), jnp.uint8)}
    enc = Encoding(TinyEncoder(features=(8,)), goal_conditioned=True, use_proprio=True)
    out, _ = enc.init_with_output(jax.random.PRNGKey(0), obs, goals)
    assert out.shape == (4, frames * 8 + int(np.prod(shape[1:])))


@pytest.mark.parametrize("algo", ["bc", "gc_bc", "gc_ddpm_bc"])
def test_short_run_loss_decreases(tfdata: Path, tmp_path: Path, algo: str) -> None:
    run = _run(tfdata, tmp_path, algo, num_steps=40, log_interval=5, eval_interval=20, save_interval=20,
               use_proprio=True, augment=False)
    result = loop.train_and_evaluate(run)
    assert result.status == "finished" and result.steps == 40
    losses = [r["loss"] for r in read_metrics(run.workdir) if r["split"] == "train"]
    assert len(losses) == 8 and losses[-1] < 0.8 * losses[0], losses
    assert result.val_loss is not None and np.isfinite(result.val_loss)
    assert (run.workdir / "config.json").exists() and list((run.workdir / "tensorboard").iterdir())
    assert json.loads((run.workdir / "summary.json").read_text())["steps"] == 40


@dataclass(frozen=True)
class Uninterrupted:
    """A gc_bc run of 20 steps trained once in this process, never killed, with what surrounded the call."""

    run: model.Run
    result: loop.RunResult
    handlers: tuple[dict[int, Any], dict[int, Any]]
    """The signal handlers before and after train_and_evaluate."""
    environ: tuple[dict[str, str], dict[str, str]]
    """os.environ before and after."""


WATCHED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


@pytest.fixture(scope="module")
def uninterrupted(tfdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Uninterrupted:
    """Trained once for the module: the resume test compares with it, the plain-function test inspects it."""
    run = _run(tfdata, tmp_path_factory.mktemp("whole"), "gc_bc", num_steps=20, log_interval=5)
    handlers, environ = {s: signal.getsignal(s) for s in WATCHED}, dict(os.environ)
    result = loop.train_and_evaluate(run)
    return Uninterrupted(run, result, (handlers, {s: signal.getsignal(s) for s in WATCHED}),
                         (environ, dict(os.environ)))


def test_train_and_evaluate_is_a_plain_function_and_config_json_records_what_ran(
        uninterrupted: Uninterrupted) -> None:
    """Called in-process (as from a notebook): no signal handler installed, no environment variable changed;
    the augmentation applied by default is the one config.json and run.to_dict() record, not null."""
    run, result = uninterrupted.run, uninterrupted.result
    assert run.settings.augment and run.settings.augment_kwargs == augment.check_kwargs(
        augment.DEFAULT_KWARGS, "defaults", "augment_kwargs")
    assert result.status == "finished" and result.steps == 20
    before, after = uninterrupted.handlers
    assert after == before
    before_env, after_env = uninterrupted.environ
    assert after_env == before_env
    recorded = json.loads((run.workdir / "config.json").read_text())
    assert recorded["settings"]["augment_kwargs"] == run.settings.augment_kwargs
    assert recorded["settings"]["augment_kwargs"]["augment_order"] == augment.DEFAULT_KWARGS["augment_order"]
    assert (recorded["algo"], recorded["settings"]["encoder"], recorded["settings"]["goal_relabeling"]) == (
        "gc_bc", "tiny", "uniform")  # enums written as their YAML spellings
    assert model.Run.from_dict(recorded) == run


def test_kill_and_resume_continues_from_the_last_checkpoint_deterministically(
        tfdata: Path, tmp_path: Path, uninterrupted: Uninterrupted) -> None:
    whole = uninterrupted.run
    split = _run(tfdata, tmp_path / "b", "gc_bc", num_steps=20, log_interval=5)
    first = loop.train_and_evaluate(split, stop_after=13)  # killed after 13 steps; last checkpoint: step 10
    assert first.status == "stopped" and first.checkpoint.endswith("/10")
    again = tmp_path / "again"
    shutil.copytree(split.workdir, again)  # the same killed run, resumed a second time
    second = loop.train_and_evaluate(split)
    assert second.status == "finished" and second.steps == 20 and "resumed from step 10" in second.notes
    assert sorted(int(p.name) for p in (split.workdir / "checkpoints").iterdir()) == [10, 20]
    train = [r for r in read_metrics(split.workdir) if r["split"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 20]  # the step-15 record of the killed session was dropped
    want = {r["step"]: r["loss"] for r in read_metrics(whole.workdir) if r["split"] == "train"}
    for r in train[:2]:  # before the kill: the same batches and state as the run that was never killed
        assert r["loss"] == pytest.approx(want[r["step"]], rel=1e-4), r["step"]
    # After it, batches restarted from (seed, 10): the same distribution, not the same batches (data.py), but
    # deterministic given (seed, step): a second resumption of the same checkpoint trains exactly alike.
    loop.train_and_evaluate(split, workdir=again)
    repeat = {r["step"]: r["loss"] for r in read_metrics(again) if r["split"] == "train"}
    for r in train[2:]:
        assert np.isfinite(r["loss"]) and r["loss"] == pytest.approx(repeat[r["step"]], rel=1e-5), r["step"]


def test_non_finite_loss_names_the_step_window(tfdata: Path, tmp_path: Path) -> None:
    run = _run(tfdata, tmp_path, "gc_bc", num_steps=20, log_interval=5, learning_rate=1e30, warmup_steps=1)
    with pytest.raises(NonFiniteError, match=r"between step \d+ and step \d+"):
        loop.train_and_evaluate(run)
