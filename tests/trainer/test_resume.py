"""Resuming costs a fresh start, whatever the step: the input streams restart from (seed, step) instead of
replaying the batches before it, and a resumed run is deterministic given (seed, step) (data.py's docstring
says what it shares with an uninterrupted run). The time to the first step: bench/bench_resume.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orbax.checkpoint as ocp
import pytest

from bdv2.trainer import config, data, loop, model
from bdv2.trainer.agents import make_agent
from bdv2.trainer.metrics import read_metrics

from . import helpers

FAR = 100_000


def _run(tfdata: Path, tmp_path: Path, **over: Any) -> model.Run:
    tmp_path.mkdir(parents=True, exist_ok=True)
    g = helpers.base_global(tfdata, tmp_path / "runs", **over)
    y = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "matrix": {"algos": ["gc_bc"], "tasks": ["kitchen"]}})
    return config.load(y).runs[0]


def test_stream_seed_is_the_seed_for_a_fresh_run_and_new_for_each_start() -> None:
    assert data.stream_seed(42, 0) == 42
    seeds = {data.stream_seed(42, n) for n in (1, 2, 10, FAR)}
    assert len(seeds) == 4 and all(0 <= s < 2**31 for s in seeds)
    assert data.stream_seed(42, FAR) == data.stream_seed(42, FAR) != data.stream_seed(43, FAR)


def test_a_far_start_does_not_replay(tfdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data.hide_gpus_from_tf()
    import tensorflow as tf

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the train pipeline replays batches (Dataset.skip) to resume")

    monkeypatch.setattr(tf.data.Dataset, "skip", refuse)
    batch = next(data.train_iterator(_run(tfdata, tmp_path), start_step=10**12))
    assert batch["actions"].shape == (8, 7)


def _fake_checkpoint(run: model.Run, workdir: Path, step: int) -> None:
    """A checkpoint at ``step`` as the loop writes one (the state of a fresh run, its step set to ``step``)."""
    data.hide_gpus_from_tf()
    agent, tx = make_agent(run), loop.make_optimizer(run)
    state = loop.create_train_state(agent, tx, next(data.train_iterator(run)), run.settings.seed)
    state = state.replace(step=np.int32(step))
    with ocp.CheckpointManager(workdir.resolve() / "checkpoints",
                               options=ocp.CheckpointManagerOptions(create=True)) as manager:
        manager.save(step, args=ocp.args.StandardSave(state))
        manager.wait_until_finished()


def test_resuming_far_trains_from_the_checkpoint_step(tfdata: Path, tmp_path: Path) -> None:
    run = _run(tfdata, tmp_path, num_steps=FAR + 4, log_interval=2, eval_interval=10**6, save_interval=10**6)
    _fake_checkpoint(run, run.workdir, FAR)
    result = loop.train_and_evaluate(run)
    assert result.status == "finished" and result.steps == FAR + 4 and f"resumed from step {FAR}" in result.notes
    logged = [r for r in read_metrics(run.workdir) if r["split"] == "train"]
    assert [r["step"] for r in logged] == [FAR + 2, FAR + 4] and all(np.isfinite(r["loss"]) for r in logged)
    # Two resumptions from one checkpoint train alike: test_train_loop.py's kill-and-resume test.
