"""One run's training loop, in the shape of the flax examples: small pure functions and one readable
`train_and_evaluate`.

    tf.data batches -> sharded over the local devices (NamedSharding) -> jitted train_step
    -> every log_interval: metrics (JSONL, TensorBoard, W&B) and a NaN/inf check naming the step window
    -> every eval_interval: eval_step over at most eval_batches validation batches
    -> every save_interval: an orbax checkpoint (asynchronous: written while training goes on; atomic; the
       last keep_checkpoints kept)
    -> a stop request (the worker's signal handlers, process.py): the current step saved, status "preempted"

Kill it and call it again: it restores the latest checkpoint and restarts the input streams from (seed, step)
at no replay cost: the step count is that of an uninterrupted run, the batches come from the same
distribution (data.py's docstring says what exactly), and a resumed run is deterministic given (seed, step).

Multi-host (jax.distributed, one process per host): hosts.py. Batch sizes are checked against the global
device count; evaluation runs as many batches as the host with the fewest has (hosts must take part in the
same number of jitted steps); host 0 alone writes metrics, the config snapshot and summary.json.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bdv2.fsutil import write_json_atomic
from bdv2.paths import AnyPath, as_path, orbax_path

from . import batching, data
from .agents import Agent, make_agent
from .augment import Augmenter, augmenter
from .errors import NonFiniteError
from .hosts import Hosts, every_host_has, make_global_batch
from .metrics import MetricWriter, read_metrics, truncate_after
from .model import Metadata, Run
from .status import SUMMARY_FILE, RunStatus

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
    status: RunStatus
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


def lr_schedule(run: Run) -> optax.Schedule:
    """Warmup-cosine whose length includes the warmup (lr(0) = 0, as the original): the optimiser's schedule
    and the "lr" the metrics log."""
    s = run.settings
    return optax.warmup_cosine_decay_schedule(0.0, s.learning_rate, s.warmup_steps,
                                              max(run.decay_steps, s.warmup_steps + 1), 0.0)


def make_optimizer(run: Run) -> optax.GradientTransformation:
    """Adam on `lr_schedule`."""
    return optax.adam(lr_schedule(run))


def create_train_state(agent: Agent, tx: optax.GradientTransformation, batch: data.Batch, seed: int) -> TrainState:
    rng, init_rng = jax.random.split(jax.random.PRNGKey(seed))
    params = agent.init(init_rng, batch)
    # A copy, not the same buffers: the jitted step donates its input state, and a buffer may be donated once.
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, target_params=jax.tree.map(jnp.copy, params),
                      opt_state=tx.init(params), rng=rng)


def train_step(agent: Agent, tx: optax.GradientTransformation, state: TrainState, batch: data.Batch,
               augment: Augmenter | None = None) -> tuple[TrainState, dict[str, jax.Array]]:
    """One update; ``augment`` (augment.augmenter) first augments the batch's images, keyed by (seed, step)."""
    if augment is not None:
        batch = augment(batch, state.step)
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


def check_batch_sizes(run: Run, hosts: Hosts) -> None:
    """Both batch sizes split evenly over every device of every host (hence over the hosts too).

    Raises:
        ConfigError: naming the key, the global device and host counts and a size that works.
    """
    where = f"{hosts.count} hosts" if hosts.count > 1 else f"{jax.devices()[0].platform}"
    batching.check_divisible(batching.batch_sizes(run.settings), hosts.global_devices, run.config_file, "",
                             context=f"in total ({where})")


def _mean(records: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in records])) for k in records[0]} if records else {}


def evaluate(agent: Agent, state: TrainState, run: Run, shard: Callable[[Any], Any],
             eval_fn: Callable[..., Any], devices: int, step: int, hosts: Hosts | None = None) -> dict[str, float]:
    """Mean eval metrics over at most eval_batches validation batches; {} when the split has none.

    ``devices``: this host's device count. With several hosts, stops when any host runs out of batches.
    """
    hosts = hosts or Hosts()
    records = []
    batches = data.val_batches(run, devices, run.settings.eval_batches, hosts.index, hosts.count)
    for i in itertools.count():
        batch = next(batches, None)
        if not every_host_has(batch is not None, hosts):
            break
        assert batch is not None
        rng = jax.random.fold_in(jax.random.PRNGKey(run.settings.seed), step * 1000 + i)
        records.append({k: float(v) for k, v in jax.device_get(eval_fn(state, shard(batch), rng)).items()})
    return _mean(records)


@dataclass
class _Progress:
    """What the loop carries from step to step and reports at the end."""

    step: int
    train_loss: float | None
    val_loss: float | None
    notes: list[str] = field(default_factory=list)
    status: RunStatus = RunStatus.FINISHED


@dataclass
class _LogWindow:
    """The steps since the last log step: their metrics (still on the device) and whether all were finite."""

    start: int
    tick: float = field(default_factory=time.perf_counter)
    finite: jax.Array = field(default_factory=lambda: jnp.array(True))
    pending: list[dict[str, jax.Array]] = field(default_factory=list)

    def add(self, metrics: dict[str, jax.Array]) -> None:
        self.finite = self.finite & metrics.pop("finite")
        self.pending.append(metrics)

    def close(self, step: int, lr: float) -> dict[str, float]:
        """The window's mean metrics, steps/s and the learning rate; a new window starts after ``step``.

        Raises:
            NonFiniteError: a loss or gradient of the window (or before) was NaN/inf.
        """
        scalars = _mean([{k: float(v) for k, v in m.items()} for m in jax.device_get(self.pending)])
        if not bool(self.finite) or not all(math.isfinite(v) for v in scalars.values()):
            raise NonFiniteError(self.start + 1, step, scalars)
        now = time.perf_counter()
        scalars["steps_per_s"] = (step - self.start) / max(now - self.tick, 1e-9)
        scalars["lr"] = lr
        self.start, self.tick, self.pending = step, now, []
        return scalars


@dataclass(frozen=True)
class _Session:
    """Everything one training session works with, built by `train_and_evaluate`."""

    run: Run
    agent: Agent
    tx: optax.GradientTransformation
    shard: Callable[[data.Batch], Any]
    hosts: Hosts
    writer: MetricWriter
    manager: ocp.CheckpointManager


def _placement(hosts: Hosts) -> tuple[Callable[[data.Batch], Any], NamedSharding]:
    """(local batch -> global batch split over the mesh, the replicated sharding of the state)."""
    # The global mesh: every device of every host (on one host, its local devices).
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    batch_sharding = NamedSharding(mesh, PartitionSpec("batch"))  # split axis 0 of every leaf

    def shard(batch: data.Batch) -> Any:
        return make_global_batch(batch, batch_sharding, hosts)

    return shard, NamedSharding(mesh, PartitionSpec())


def _last_losses(workdir: AnyPath) -> tuple[float | None, float | None]:
    """The last train and val losses already logged, so a resumed (or already finished) run still reports them."""
    logged = read_metrics(workdir)
    train = next((r["loss"] for r in reversed(logged) if r.get("split") == "train" and "loss" in r), None)
    val = next((r["loss"] for r in reversed(logged) if r.get("split") == "val" and "loss" in r), None)
    return train, val


def _evaluate_and_log(ses: _Session, state: TrainState, eval_fn: Callable[..., Any], step: int,
                      progress: _Progress) -> None:
    val = evaluate(ses.agent, state, ses.run, ses.shard, eval_fn, jax.local_device_count(), step, ses.hosts)
    if val:
        ses.writer.write(step, "val", val)
        progress.val_loss = val["loss"]
    elif "no validation batches" not in " ".join(progress.notes):
        progress.notes.append("no validation batches (empty val split, or fewer rows than devices): "
                              "evaluation skipped")


def _train(ses: _Session, state: TrainState, batches: Iterator[data.Batch], progress: _Progress,
           report: Callable[[int, int, float], None] | None, stop_after: int | None,
           stop: Callable[[int], str | None] | None) -> None:
    """Steps progress.step + 1 .. num_steps with the periodic log, evaluation and checkpoint; stops early (as a
    kill would) after ``stop_after`` steps, or after saving the step at which ``stop`` gives a reason."""
    s = ses.run.settings
    agent, tx, lr = ses.agent, ses.tx, lr_schedule(ses.run)
    aug = augmenter(enabled=s.augment, seed=s.seed, kwargs=s.augment_kwargs,
                    differently=s.augment_next_obs_goal_differently)
    step_fn = jax.jit(lambda st, b: train_step(agent, tx, st, b, aug), donate_argnums=0)
    eval_fn = jax.jit(lambda st, b, r: eval_step(agent, st, b, r))
    window = _LogWindow(progress.step)
    for step in range(progress.step + 1, s.num_steps + 1):
        state, metrics = step_fn(state, ses.shard(next(batches)))
        window.add(metrics)
        progress.step = step
        if is_time(step, s.log_interval, s.num_steps):
            scalars = window.close(step, float(lr(step)))
            ses.writer.write(step, "train", scalars)
            progress.train_loss = scalars["loss"]
            if report is not None:
                report(step, s.num_steps, scalars["steps_per_s"])
        if is_time(step, s.eval_interval, s.num_steps):
            _evaluate_and_log(ses, state, eval_fn, step, progress)
        saved = is_time(step, s.save_interval, s.num_steps)
        if saved:  # asynchronous: returns once the state is copied off the devices, writes in the background
            ses.manager.save(step, args=ocp.args.StandardSave(state))
            ses.writer.sync()  # a remote run folder: its metrics and log up to this step
        reason = stop(step) if stop is not None else None  # every step: on several hosts, a collective poll
        if reason is not None and step < s.num_steps:
            if not saved:
                ses.manager.save(step, args=ocp.args.StandardSave(state), force=True)
                ses.writer.sync()
            progress.status = RunStatus.PREEMPTED
            progress.notes.append(f"preempted at step {step} by {reason}, checkpoint saved")
            break
        if stop_after is not None and step >= stop_after and step < s.num_steps:
            progress.status = RunStatus.STOPPED
            break


def train_and_evaluate(run: Run, workdir: AnyPath | None = None, stop_after: int | None = None,
                       report: Callable[[int, int, float], None] | None = None,
                       hosts: Hosts | None = None, stop: Callable[[int], str | None] | None = None) -> RunResult:
    """Train ``run`` in ``workdir`` (default run.workdir), resuming from its latest checkpoint.

    A plain function: it sets up nothing in the process (no signal handler, no environment variable, no
    logging, no jax.distributed), so a test or a notebook can call it. The process set-up is the caller's
    (worker.main): keep TensorFlow off the GPU (data.hide_gpus_from_tf) and join jax.distributed
    (hosts.maybe_initialize_distributed) before calling it.

    Args:
        stop_after: stop (as a kill would) once this many steps are done; for tests.
        stop: polled after every step with the step's number; a reason (not None) ends training there with a
            checkpoint of that step and the status "preempted" (the worker's stop signals, process.py).
        report: called as report(step, num_steps, steps_per_s) at every log step (a progress bar).
        hosts: this process among the jax.distributed ones; default: asked from jax.

    Raises:
        NonFiniteError: the loss or a gradient became NaN/inf.
        ConfigError: a batch size is not divisible by the global device count.
    """
    t0 = time.perf_counter()
    workdir = as_path(workdir or run.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    hosts = hosts or Hosts.current()
    check_batch_sizes(run, hosts)
    shard, replicated = _placement(hosts)
    primary = hosts.index == 0  # files beside the checkpoints: written once, by host 0 (a shared workdir)
    Metadata.load(run.task.metadata)  # a damaged file is a DataError naming it, not a JSON traceback
    if primary:  # the config snapshot: enough to rebuild the agent and undo the normalisation
        write_json_atomic(workdir / CONFIG_SNAPSHOT, {**run.to_dict(), "metadata": json.loads(
            as_path(run.task.metadata).read_text())}, indent=2, sort_keys=False)
    manager = ocp.CheckpointManager(orbax_path(workdir / "checkpoints"), options=ocp.CheckpointManagerOptions(
        max_to_keep=run.settings.keep_checkpoints, create=True, enable_async_checkpointing=True))
    start = manager.latest_step() or 0
    if primary:
        truncate_after(workdir, start)
    agent, tx = make_agent(run), make_optimizer(run)
    batches = data.train_iterator(run, start, hosts.index, hosts.count)
    first = next(batches)  # shapes for init; it is also the batch of step `start`, so it is trained on
    state = create_train_state(agent, tx, first, run.settings.seed)
    if run.settings.init_from and not start:  # fine-tuning: its params at step 0; a resumed run keeps its own
        from . import init_from

        state = init_from.apply(state, run.settings.init_from, run.config_file)
    progress = _Progress(start, *_last_losses(workdir))
    if start:
        state = manager.restore(start, args=ocp.args.StandardRestore(state))
        progress.notes.append(f"resumed from step {start}")
    writer = MetricWriter(workdir, run.name, run.to_dict(), run.settings.wandb_project, enabled=primary)
    ses = _Session(run, agent, tx, shard, hosts, writer, manager)
    try:
        _train(ses, jax.device_put(state, replicated), itertools.chain([first], batches), progress, report,
               stop_after, stop)
        manager.wait_until_finished()  # the last save, whether at the end or on the way out
    finally:
        latest = manager.latest_step()
        progress.notes.extend(writer.warnings)
        writer.close()
        manager.close()
    checkpoint = str(workdir / "checkpoints" / str(latest)) if latest is not None else ""
    result = RunResult(run.name, progress.status, progress.step, progress.train_loss, progress.val_loss,
                       time.perf_counter() - t0, checkpoint, progress.notes)
    if primary:
        write_json_atomic(workdir / SUMMARY_FILE, result.to_dict(), indent=2, sort_keys=False)
    return result
