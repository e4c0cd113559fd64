"""One run's training loop, in the shape of the flax examples: small pure functions and one readable
`train_and_evaluate`.

    tf.data batches -> sharded over the local devices (NamedSharding) -> jitted train_step
    -> every log_interval: metrics (JSONL, TensorBoard, W&B) and a NaN/inf check naming the step window
    -> every eval_interval: eval_step over at most eval_batches validation batches
    -> every save_interval: an orbax checkpoint (atomic; the last keep_checkpoints kept)

Kill it and call it again: it restores the latest checkpoint and replays the input pipeline to the same
position, so the step count and the batches are those of an uninterrupted run.

Multi-host: under SLURM with several tasks, `jax.distributed.initialize()` reads the coordinator from the
SLURM environment (`srun python -m bdv2.trainer.worker run.json`, one task per host; see
trainer/README section in the project README). Each host then feeds its local devices.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bdv2.trainer import data
from bdv2.trainer.agents import Agent, make_agent
from bdv2.trainer.config import Run
from bdv2.trainer.errors import ConfigError, NonFiniteError
from bdv2.trainer.metrics import MetricWriter, read_metrics, truncate_after

SUMMARY_FILE = "summary.json"
CONFIG_SNAPSHOT = "config.json"


class TrainState(flax.struct.PyTreeNode):
    step: jax.Array
    params: Any
    target_params: Any
    opt_state: Any
    rng: jax.Array


@dataclass
class RunResult:
    name: str
    status: str
    """'finished', 'stopped' (the test hook) or 'failed'."""
    steps: int
    train_loss: float | None
    val_loss: float | None
    wall_s: float
    checkpoint: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "status", "steps", "train_loss", "val_loss", "wall_s",
                                              "checkpoint", "notes")}


def is_time(step: int, every: int, total: int) -> bool:
    """Periodic work after `step` completed updates; always at the end (big_vision's itstime)."""
    return step % every == 0 or step == total


def make_optimizer(run: Run) -> optax.GradientTransformation:
    """Adam on a warmup-cosine schedule whose length includes the warmup (lr(0) = 0, as the original)."""
    s = run.settings
    schedule = optax.warmup_cosine_decay_schedule(0.0, s.learning_rate, s.warmup_steps,
                                                  max(run.decay_steps, s.warmup_steps + 1), 0.0)
    return optax.adam(schedule)


def create_train_state(agent: Agent, tx: optax.GradientTransformation, batch: data.Batch, seed: int) -> TrainState:
    rng, init_rng = jax.random.split(jax.random.PRNGKey(seed))
    params = agent.init(init_rng, batch)
    # A copy, not the same buffers: the jitted step donates its input state, and a buffer may be donated once.
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, target_params=jax.tree.map(jnp.copy, params),
                      opt_state=tx.init(params), rng=rng)


def train_step(agent: Agent, tx: optax.GradientTransformation, state: TrainState,
               batch: data.Batch) -> tuple[TrainState, dict[str, jax.Array]]:
    rng, step_rng = jax.random.split(state.rng)
    (_, metrics), grads = jax.value_and_grad(agent.loss, has_aux=True)(state.params, batch, step_rng)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    tau = agent.target_update_rate
    target = params if tau >= 1.0 else optax.incremental_update(params, state.target_params, tau)
    finite = jnp.isfinite(optax.tree.norm(grads)) & jnp.isfinite(metrics["loss"])
    return state.replace(step=state.step + 1, params=params, target_params=target, opt_state=opt_state,
                         rng=rng), {**metrics, "grad_norm": optax.tree.norm(grads), "finite": finite}


def eval_step(agent: Agent, state: TrainState, batch: data.Batch, rng: jax.Array) -> dict[str, jax.Array]:
    return agent.evaluate(state.target_params, batch, rng)


def maybe_initialize_distributed() -> None:
    """jax.distributed under SLURM with several tasks (it finds the coordinator itself); else nothing."""
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and jax.process_count() == 1:
        jax.distributed.initialize()


def _mean(records: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in records])) for k in records[0]} if records else {}


def evaluate(agent: Agent, state: TrainState, run: Run, shard: Callable[[Any], Any],
             eval_fn: Callable[..., Any], devices: int, step: int) -> dict[str, float]:
    """Mean eval metrics over at most eval_batches validation batches; {} when the split has none."""
    records = []
    for i, batch in enumerate(data.val_batches(run, devices, run.settings.eval_batches)):
        rng = jax.random.fold_in(jax.random.PRNGKey(run.settings.seed), step * 1000 + i)
        records.append({k: float(v) for k, v in jax.device_get(eval_fn(state, shard(batch), rng)).items()})
    return _mean(records)


def train_and_evaluate(run: Run, workdir: Path | None = None, stop_after: int | None = None,
                       report: Callable[[int, int, float], None] | None = None) -> RunResult:
    """Train ``run`` in ``workdir`` (default run.workdir), resuming from its latest checkpoint.

    Args:
        stop_after: stop (as a kill would) once this many steps are done; for tests.
        report: called as report(step, num_steps, steps_per_s) at every log step (a progress bar).

    Raises:
        NonFiniteError: the loss or a gradient became NaN/inf.
        ConfigError: the batch size is not divisible by the local device count.
    """
    t0 = time.perf_counter()
    s = run.settings
    workdir = Path(workdir or run.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data.hide_gpus_from_tf()
    maybe_initialize_distributed()

    devices = jax.local_devices()
    for key in ("train_batch_size", "val_batch_size"):
        size = getattr(s, key)
        if size is not None and size % len(devices):
            raise ConfigError(run.config_file, f"{key}", f"{size} is not divisible by the {len(devices)} local "
                              f"devices ({devices[0].platform})", f"use a multiple of {len(devices)}")
    mesh = Mesh(np.array(devices), ("batch",))
    batch_sharding = NamedSharding(mesh, PartitionSpec("batch"))  # split axis 0 of every leaf
    replicated = NamedSharding(mesh, PartitionSpec())

    def shard(batch: data.Batch) -> Any:
        return jax.device_put(batch, batch_sharding)

    # The config snapshot beside the checkpoints: enough to rebuild the agent and undo the normalisation.
    (workdir / CONFIG_SNAPSHOT).write_text(json.dumps({**run.to_dict(), "metadata": json.loads(
        Path(run.task.metadata).read_text())}, indent=2))
    manager = ocp.CheckpointManager(workdir.resolve() / "checkpoints", options=ocp.CheckpointManagerOptions(
        max_to_keep=s.keep_checkpoints, create=True, enable_async_checkpointing=False))
    start = manager.latest_step() or 0
    truncate_after(workdir, start)
    notes: list[str] = []

    agent, tx = make_agent(run), make_optimizer(run)
    batches = data.train_iterator(run, start)
    first = next(batches)  # shapes for init; it is also the batch of step `start`, so it is trained on
    state = create_train_state(agent, tx, first, s.seed)
    if start:
        state = manager.restore(start, args=ocp.args.StandardRestore(state))
        notes.append(f"resumed from step {start}")
    state = jax.device_put(state, replicated)
    step_fn = jax.jit(lambda st, b: train_step(agent, tx, st, b), donate_argnums=0)
    eval_fn = jax.jit(lambda st, b, r: eval_step(agent, st, b, r))

    writer = MetricWriter(workdir, run.name, run.to_dict(), s.wandb_project)
    # Start from the last losses already logged, so a resumed (or already finished) run still reports them.
    logged = read_metrics(workdir)
    train_loss = next((r["loss"] for r in reversed(logged) if r.get("split") == "train" and "loss" in r), None)
    val_loss = next((r["loss"] for r in reversed(logged) if r.get("split") == "val" and "loss" in r), None)
    status, step = "finished", start
    try:
        finite = jnp.array(True)
        last_check, tick, tick_step = start, time.perf_counter(), start
        pending: list[dict[str, jax.Array]] = []
        for step in range(start + 1, s.num_steps + 1):
            batch = first if step == start + 1 else next(batches)
            state, metrics = step_fn(state, shard(batch))
            finite = finite & metrics.pop("finite")
            pending.append(metrics)
            if is_time(step, s.log_interval, s.num_steps):
                fetched = jax.device_get(pending)
                scalars = _mean([{k: float(v) for k, v in m.items()} for m in fetched])
                if not bool(finite) or not all(math.isfinite(v) for v in scalars.values()):
                    raise NonFiniteError(last_check + 1, step, scalars)
                now = time.perf_counter()
                scalars["steps_per_s"] = (step - tick_step) / max(now - tick, 1e-9)
                scalars["lr"] = float(tx_lr(run, step))
                writer.write(step, "train", scalars)
                train_loss = scalars["loss"]
                if report is not None:
                    report(step, s.num_steps, scalars["steps_per_s"])
                last_check, tick, tick_step, pending = step, now, step, []
            if is_time(step, s.eval_interval, s.num_steps):
                val = evaluate(agent, state, run, shard, eval_fn, len(devices), step)
                if val:
                    writer.write(step, "val", val)
                    val_loss = val["loss"]
                elif "no validation batches" not in " ".join(notes):
                    notes.append("no validation batches (empty val split, or fewer rows than devices): "
                                 "evaluation skipped")
            if is_time(step, s.save_interval, s.num_steps):
                manager.save(step, args=ocp.args.StandardSave(state))
            if stop_after is not None and step >= stop_after and step < s.num_steps:
                status = "stopped"
                break
        manager.wait_until_finished()
    finally:
        latest = manager.latest_step()
        notes.extend(writer.warnings)
        writer.close()
        manager.close()
    checkpoint = str(workdir / "checkpoints" / str(latest)) if latest is not None else ""
    result = RunResult(run.name, status, step, train_loss, val_loss, time.perf_counter() - t0, checkpoint, notes)
    (workdir / SUMMARY_FILE).write_text(json.dumps(result.to_dict(), indent=2))
    return result


def tx_lr(run: Run, step: int) -> float:
    s = run.settings
    return float(optax.warmup_cosine_decay_schedule(0.0, s.learning_rate, s.warmup_steps,
                                                    max(run.decay_steps, s.warmup_steps + 1), 0.0)(step))
