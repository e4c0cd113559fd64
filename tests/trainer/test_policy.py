"""load_policy on runs the trainer wrote: action shapes, un-normalisation, observation history, action chunks,
proprio, seeds and the errors for a wrong directory or a missing goal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bdv2.trainer import config, loop, model
from bdv2.trainer.ckpt_tree import CheckpointError
from bdv2.trainer.policy import load_policy
from bdv2.trainer.settings import Algo

from . import helpers

S = helpers.IM


def written_run(tmp: Path, algo: str, **over: Any) -> Path:
    """A run directory as the trainer leaves it, from freshly initialised parameters (no training)."""
    import jax

    from bdv2.fsutil import write_json_atomic
    from bdv2.trainer.agents import make_agent
    from bdv2.trainer.checkpoint_io import example_batch, save_state

    meta = {"action": {"mean": [0.0] * 6 + [0.5], "std": [0.01] * 6 + [0.5]},
            "proprio": {"mean": [0.0] * 7, "std": [1.0] * 7}}
    run = model.Run("r", Algo(algo), model.Task("t", (), str(tmp / "meta.json")), config.build_settings(
        {"data_root": str(tmp), "save_dir": str(tmp), "encoder": "tiny", "hidden_dims": [32], **over}, "t", ""))
    params = make_agent(run).init(jax.random.PRNGKey(1), example_batch(run, S))
    write_json_atomic(run.workdir / "config.json", {**run.to_dict(), "metadata": meta})
    save_state(run, {"params": params, "target_params": params, "rng": jax.random.PRNGKey(0)}, run.workdir, 7)
    return run.workdir


def _train(tfdata: Path, tmp: Path, algo: str, **over: Any) -> Path:
    g = helpers.base_global(tfdata, tmp / "runs", num_steps=4, save_interval=2, eval_interval=4, log_interval=2,
                            keep_checkpoints=5, augment=False, **over)
    y = helpers.write_yaml(tmp / "m.yaml", {"global": g, "matrix": {"algos": [algo], "tasks": ["kitchen"]}})
    run = config.load(y).runs[0]
    loop.train_and_evaluate(run)
    return run.workdir


@pytest.fixture(scope="module")
def gc_run(tfdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tfdata, tmp_path_factory.mktemp("gc"), "gc_bc", use_proprio=True)


def _obs(batch: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (S, S, 3) if batch is None else (batch, S, S, 3)
    proprio = rng.normal(size=(7,) if batch is None else (batch, 7)).astype(np.float32)
    return {"image": rng.integers(0, 256, shape, dtype=np.uint8), "proprio": proprio}


def test_gc_bc_actions_are_unnormalised_means(gc_run: Path) -> None:
    policy = load_policy(gc_run)
    goal = {"image": _obs()["image"]}
    one = policy.act(_obs(), goal)
    assert one.shape == (7,) and one.dtype == np.float32
    batch = policy.act(_obs(3), goal)  # one goal for the whole batch
    assert batch.shape == (3, 7)
    again = policy.act({k: v[1] for k, v in _obs(3).items()}, goal)
    np.testing.assert_allclose(again, batch[1], atol=1e-5)
    # The run's statistics (helpers.write_tree): the gripper has mean 0.5, std 0.5; the arm std 0.01.
    meta = json.loads((gc_run / "config.json").read_text())["metadata"]
    raw = (one - np.asarray(meta["action"]["mean"])) / np.asarray(meta["action"]["std"])
    assert np.all(np.abs(raw) < 50), raw  # a normalised-unit output would not need this check to pass
    sampled = policy.act(_obs(), goal, seed=1, deterministic=False)
    assert not np.allclose(sampled, one) and np.allclose(sampled, policy.act(_obs(), goal, seed=1,
                                                                                deterministic=False))


def test_a_step_directory_and_errors(gc_run: Path, tmp_path: Path) -> None:
    steps = sorted((gc_run / "checkpoints").iterdir(), key=lambda p: int(p.name))
    assert [p.name for p in steps] == ["2", "4"]
    first, last = load_policy(steps[0]), load_policy(gc_run)
    goal = {"image": _obs()["image"]}
    assert not np.allclose(first.act(_obs(), goal), last.act(_obs(), goal))
    with pytest.raises(ValueError, match="goal"):
        last.act(_obs())
    with pytest.raises(ValueError, match="proprio"):
        last.act({"image": _obs()["image"]}, goal)
    with pytest.raises(CheckpointError, match="not a bdv2 run directory"):
        load_policy(tmp_path)


def test_ddpm_history_and_chunks(tmp_path: Path) -> None:
    run = written_run(tmp_path, "gc_ddpm_bc", obs_horizon=2, act_pred_horizon=3)
    policy = load_policy(run)
    goal = {"image": _obs()["image"]}
    a = policy.act(_obs(), goal, seed=3)
    assert a.shape == (3, 7)
    assert np.array_equal(a, load_policy(run).act(_obs(), goal, seed=3))  # fresh history: the frame twice
    # The history: a second, different frame changes the input; reset() forgets it.
    b = policy.act(_obs(seed=5), goal, seed=3)
    explicit = np.stack([_obs()["image"], _obs(seed=5)["image"]])[None]  # [1, h, S, S, 3]
    np.testing.assert_allclose(policy.act({"image": explicit}, goal, seed=3)[0], b, atol=1e-5)
    policy.reset()
    np.testing.assert_allclose(policy.act(_obs(), goal, seed=3), a, atol=1e-5)
    assert policy.act(_obs(4), goal, seed=0).shape == (4, 3, 7)
    assert not np.allclose(policy.act(_obs(), goal, seed=4), a)


def test_bc_needs_no_goal(tmp_path: Path) -> None:
    policy = load_policy(written_run(tmp_path, "bc"))
    assert policy.act(_obs()).shape == (7,)


def test_lc_bc_takes_an_embedding(tmp_path: Path) -> None:
    policy = load_policy(written_run(tmp_path, "lc_bc", encoder="tiny-film"))
    emb = np.random.default_rng(0).normal(size=(512,)).astype(np.float32)
    a = policy.act(_obs(), language=emb)
    assert a.shape == (7,)
    assert policy.act(_obs(2), language=emb).shape == (2, 7)
    with pytest.raises(ValueError, match="text_encoder"):
        policy.act(_obs(), language="put the carrot in the pot")
    with pytest.raises(ValueError, match="language"):
        policy.act(_obs())
