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
trainer/README section in the project README); elsewhere set BDV2_COORDINATOR_ADDRESS (host:port of
process 0), BDV2_NUM_PROCESSES and BDV2_PROCESS_ID for each worker. The workdir must be shared by the
hosts (orbax writes one checkpoint from all of them); host 0 alone writes metrics, the config snapshot and
summary.json. Each host reads its own disjoint part of the data
(data.py, `Hosts`), batches train_batch_size / process_count rows, and `make_global_batch` assembles the
global batch from the hosts' local ones (jax.make_array_from_process_local_data over the global mesh);
batch sizes are checked against the global device count. Evaluation runs as many batches as the host with
the fewest has (hosts must take part in the same number of jitted steps). With one process everything is
as on a single machine: the local batch is the global one, placed with jax.device_put.

Tested (tests/trainer/test_train_multihost.py): the divisibility check against the global device count, the
per-host data split (disjoint, union = single host), `make_global_batch` on one process, and a real
two-process jax.distributed run on one machine (CPU, one device per process: same loss on both, one set of
files). Not tested: several devices per host, separate machines, SLURM's own discovery, GPUs.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Mapping
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


COORDINATOR_ENV = ("BDV2_COORDINATOR_ADDRESS", "BDV2_NUM_PROCESSES", "BDV2_PROCESS_ID")
"""Explicit coordinator settings (outside SLURM): host:port of process 0, the process count, this process's id."""


def maybe_initialize_distributed(environ: Mapping[str, str] | None = None) -> None:
    """jax.distributed with the explicit BDV2_COORDINATOR_ADDRESS / BDV2_NUM_PROCESSES / BDV2_PROCESS_ID, or
    under SLURM with several tasks (it finds the coordinator itself); else nothing.

    Raises:
        ConfigError: the explicit settings are incomplete or not numbers.
    """
    env = os.environ if environ is None else environ
    given = [k for k in COORDINATOR_ENV if env.get(k)]
    if given:
        if len(given) < len(COORDINATOR_ENV):
            missing = [k for k in COORDINATOR_ENV if k not in given]
            raise ConfigError("environment", missing[0], f"set with {', '.join(given)} but missing",
                              f"set all of {', '.join(COORDINATOR_ENV)}, or none (SLURM is detected by itself)")
        address, count, index = (env[k] for k in COORDINATOR_ENV)
        if not (count.isdigit() and index.isdigit() and int(index) < int(count)):
            raise ConfigError("environment", "BDV2_NUM_PROCESSES/BDV2_PROCESS_ID", f"{count!r}/{index!r}",
                              "a process count and an id in [0, count)")
        # is_initialized, not process_count(): asking for the process count starts the XLA backend, after
        # which initialize() refuses to run.
        if int(count) > 1 and not jax.distributed.is_initialized():
            jax.distributed.initialize(address, num_processes=int(count), process_id=int(index))
        return
    if int(env.get("SLURM_NTASKS", "1")) > 1 and not jax.distributed.is_initialized():
        jax.distributed.initialize()


@dataclass(frozen=True)
class Hosts:
    """Where this process stands among the jax.distributed processes; injectable so tests can play host k
    of n on one machine."""

    index: int = 0
    count: int = 1
    global_devices: int = 1
    """jax.device_count(): the devices of every host, which the global batch is split over."""

    @classmethod
    def current(cls) -> Hosts:
        return cls(jax.process_index(), jax.process_count(), jax.device_count())


def check_batch_sizes(run: Run, hosts: Hosts) -> None:
    """Both batch sizes split evenly over every device of every host (hence over the hosts too).

    Raises:
        ConfigError: naming the key, the global device and host counts and a size that works.
    """
    n = hosts.global_devices
    for key in ("train_batch_size", "val_batch_size"):
        size = getattr(run.settings, key)
        if size is not None and size % n:
            where = f"{hosts.count} hosts" if hosts.count > 1 else f"{jax.devices()[0].platform}"
            raise ConfigError(run.config_file, key, f"{size} is not divisible by the {n} devices in total "
                              f"({where})", f"use a multiple of {n}, e.g. {max(n, size // n * n)}")


def make_global_batch(local: data.Batch, sharding: NamedSharding, hosts: Hosts) -> Any:
    """This host's rows -> the global batch, axis 0 split over every device of the mesh.

    One host: jax.device_put (the local batch is the global one). Several: each leaf becomes a global array of
    `count` times the local rows via jax.make_array_from_process_local_data, which requires every host to
    pass the same number of rows (data.py makes every batch full then).
    """
    if hosts.count == 1:
        return jax.device_put(local, sharding)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local)


def _every_host_has(has: bool, hosts: Hosts) -> bool:
    """True when this host and all the others have one more batch (a cross-host gather; local on one host)."""
    if hosts.count == 1:
        return has
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.array(has))))


def _mean(records: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in records])) for k in records[0]} if records else {}


def evaluate(agent: Agent, state: TrainState, run: Run, shard: Callable[[Any], Any],
             eval_fn: Callable[..., Any], devices: int, step: int, hosts: Hosts = Hosts()) -> dict[str, float]:
    """Mean eval metrics over at most eval_batches validation batches; {} when the split has none.

    ``devices``: this host's device count. With several hosts, stops when any host runs out of batches.
    """
    records = []
    batches = data.val_batches(run, devices, run.settings.eval_batches, hosts.index, hosts.count)
    for i in itertools.count():
        batch = next(batches, None)
        if not _every_host_has(batch is not None, hosts):
            break
        assert batch is not None
        rng = jax.random.fold_in(jax.random.PRNGKey(run.settings.seed), step * 1000 + i)
        records.append({k: float(v) for k, v in jax.device_get(eval_fn(state, shard(batch), rng)).items()})
    return _mean(records)


def train_and_evaluate(run: Run, workdir: Path | None = None, stop_after: int | None = None,
                       report: Callable[[int, int, float], None] | None = None,
                       hosts: Hosts | None = None) -> RunResult:
    """Train ``run`` in ``workdir`` (default run.workdir), resuming from its latest checkpoint.

    Args:
        stop_after: stop (as a kill would) once this many steps are done; for tests.
        report: called as report(step, num_steps, steps_per_s) at every log step (a progress bar).
        hosts: this process among the jax.distributed ones; default: asked from jax (after initialising
            jax.distributed under SLURM).

    Raises:
        NonFiniteError: the loss or a gradient became NaN/inf.
        ConfigError: a batch size is not divisible by the global device count.
    """
    t0 = time.perf_counter()
    s = run.settings
    workdir = Path(workdir or run.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data.hide_gpus_from_tf()
    maybe_initialize_distributed()
    hosts = hosts or Hosts.current()

    check_batch_sizes(run, hosts)
    devices = jax.local_devices()
    # The global mesh: every device of every host (on one host, its local devices).
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    batch_sharding = NamedSharding(mesh, PartitionSpec("batch"))  # split axis 0 of every leaf
    replicated = NamedSharding(mesh, PartitionSpec())

    def shard(batch: data.Batch) -> Any:
        return make_global_batch(batch, batch_sharding, hosts)

    # The config snapshot beside the checkpoints: enough to rebuild the agent and undo the normalisation.
    primary = hosts.index == 0  # files beside the checkpoints: written once, by host 0 (a shared workdir)
    if primary:
        (workdir / CONFIG_SNAPSHOT).write_text(json.dumps({**run.to_dict(), "metadata": json.loads(
        Path(run.task.metadata).read_text())}, indent=2))
    manager = ocp.CheckpointManager(workdir.resolve() / "checkpoints", options=ocp.CheckpointManagerOptions(
        max_to_keep=s.keep_checkpoints, create=True, enable_async_checkpointing=False))
    start = manager.latest_step() or 0
    if primary:
        truncate_after(workdir, start)
    notes: list[str] = []

    agent, tx = make_agent(run), make_optimizer(run)
    batches = data.train_iterator(run, start, hosts.index, hosts.count)
    first = next(batches)  # shapes for init; it is also the batch of step `start`, so it is trained on
    state = create_train_state(agent, tx, first, s.seed)
    if start:
        state = manager.restore(start, args=ocp.args.StandardRestore(state))
        notes.append(f"resumed from step {start}")
    state = jax.device_put(state, replicated)
    step_fn = jax.jit(lambda st, b: train_step(agent, tx, st, b), donate_argnums=0)
    eval_fn = jax.jit(lambda st, b, r: eval_step(agent, st, b, r))

    writer = MetricWriter(workdir, run.name, run.to_dict(), s.wandb_project, enabled=primary)
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
                val = evaluate(agent, state, run, shard, eval_fn, len(devices), step, hosts)
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
    if primary:
        (workdir / SUMMARY_FILE).write_text(json.dumps(result.to_dict(), indent=2))
    return result


def tx_lr(run: Run, step: int) -> float:
    s = run.settings
    return float(optax.warmup_cosine_decay_schedule(0.0, s.learning_rate, s.warmup_steps,
                                                    max(run.decay_steps, s.warmup_steps + 1), 0.0)(step))
