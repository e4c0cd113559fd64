"""What a run will need, estimated in a child process before it starts: `python -m bdv2.trainer.plan runs.json
[--full]` prints one JSON object per run (budget.RunPlan's fields) on stdout.

Every launch (a few seconds: nothing is compiled or run): host RAM is the shuffle buffers, sized from one real
transition of each source (each slot holds its decoded images: ``slots * bytes per transition``), plus the
batches in flight (prefetch), plus the interpreter's own: this process's peak resident set after it imported
TF and jax and built the same input pipelines, plus the train state, whose size comes from its abstract shapes
(``jax.eval_shape``: the model is traced, not run). The state size also sizes the checkpoints for the disk check.

``--full`` (`bdv2 train --plan`, one compilation per distinct model and batch shape) compiles the train step:
device memory comes from its memory analysis (arguments, outputs and temporaries, less the donated buffers XLA
reuses) and the interpreter's own is the peak after running it (XLA and the runtime included). It also times a
few steps on a real batch and the input pipeline over a few batches (with a small shuffle buffer, so the plan
itself never fills a large one: the fill time of the real buffer is extrapolated from the input rate), hence
whether the run is input-bound and its wall time.

Budget arithmetic and the comparison with the machine are in budget.py (no jax there).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .model import Run

PREFETCH_BATCHES = 3
"""Batches in flight on the host: tf.data's AUTOTUNE prefetch buffer (it starts at one or two batches and
grows), the batch being assembled, and the one the loop holds while the device trains on the last."""
TIMED_STEPS = 5
TIMED_BATCHES = 5
PLAN_SHUFFLE_SLOTS = 256
"""The shuffle buffer of the plan's own input timing: small, so that planning a 25,000-slot run is cheap."""


def _nbytes(tree: Any) -> int:
    import jax

    return int(sum(getattr(x, "nbytes", 0) or (x.size * x.dtype.itemsize) for x in jax.tree.leaves(tree)))


def _batch_of(element: dict[str, Any], rows: int) -> Any:
    """A batch of ``rows`` copies of one transition (numpy), the shapes the loop's batches have."""
    import jax
    import numpy as np

    return jax.tree.map(lambda x: np.repeat(np.asarray(x)[None], rows, axis=0), element)


def _time(fn: Callable[[], Any], n: int) -> float:
    """Seconds per call of ``fn`` over ``n`` calls (after one warm-up call)."""
    import jax

    jax.block_until_ready(fn())
    t0 = time.perf_counter()
    for _ in range(n):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / n


def _device_limit() -> int | None:
    """Bytes the first device may allocate (None: not reported, e.g. the CPU)."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    return int(limit) if limit else None


def peak_rss_bytes() -> int:
    """This process's peak resident set so far (getrusage: kilobytes on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def estimate(run: Run, full: bool = False, seen: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One run's plan as a JSON-able dict (budget.RunPlan's fields); ``full``: compile, run and time the step.

    ``seen``: the model figures of runs already planned in this process, by the shapes and options that decide
    them (the runs of a matrix over tasks usually share one model and one compilation).
    """
    import jax
    import numpy as np

    from . import data
    from .agents import make_agent
    from .loop import make_optimizer

    s = run.settings
    elements = data.first_transitions(run)
    slot_sizes = [_nbytes(e) for _, e in elements]
    slots = [max(1, int(s.shuffle_buffer_size * w)) for w, _ in elements]
    shuffle = sum(n * b for n, b in zip(slots, slot_sizes, strict=True))
    weights = np.array([w for w, _ in elements]) / sum(w for w, _ in elements)
    transition = float(np.dot(weights, slot_sizes))
    batch_bytes = int(transition * s.train_batch_size)
    element = elements[0][1]
    out: dict[str, Any] = {
        "name": run.name, "platform": jax.devices()[0].platform, "devices": jax.device_count(),
        "shuffle_slots": sum(slots), "slot_bytes": transition, "shuffle_bytes": shuffle,
        "prefetch_bytes": PREFETCH_BATCHES * batch_bytes, "keep_checkpoints": s.keep_checkpoints,
        "num_steps": s.num_steps, "save_interval": s.save_interval,
        "image_shapes": {k: list(np.shape(v)) for k, v in _images(element).items()},
    }
    key = json.dumps([run.algo, s.encoder, list(s.hidden_dims), s.train_batch_size, s.use_proprio, s.augment,
                      s.obs_horizon, s.act_pred_horizon, {k: list(np.shape(v)) for k, v in _flat(element).items()},
                      full], default=str)
    seen = {} if seen is None else seen
    if key not in seen and not full:
        state_bytes = _abstract_state_bytes(run, make_agent(run), make_optimizer(run), element)
        # The peak so far (imports and the pipelines; nothing compiled) and the state the run will hold.
        seen[key] = {"state_bytes": state_bytes, "checkpoint_bytes": state_bytes,
                     "interpreter_bytes": peak_rss_bytes() + state_bytes}
    elif key not in seen:
        seen[key] = _measure(run, make_agent(run), make_optimizer(run), element)
        # The peak so far: imports, the pipeline, the compilation and a few steps, less the plan's own small
        # shuffle buffer: what a run holds besides its shuffle buffer and batches in flight.
        seen[key]["interpreter_bytes"] = int(peak_rss_bytes() - PLAN_SHUFFLE_SLOTS * transition)
    out.update(seen[key])
    return out


def _abstract_state_bytes(run: Run, agent: Any, tx: Any, element: dict[str, Any]) -> int:
    """Bytes of the train state (parameters, target parameters, optimizer state), from shapes alone."""
    import jax

    from .loop import create_train_state

    batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct((run.settings.train_batch_size, *x.shape), x.dtype),
                         element)
    shapes = jax.eval_shape(lambda b: create_train_state(agent, tx, b, run.settings.seed), batch)
    return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes)))


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            found.update(_flat(v, f"{prefix}{k}/"))
        else:
            found[prefix + k] = v
    return found


def _images(element: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _flat(element).items() if k.endswith("image")}


def _measure(run: Run, agent: Any, tx: Any, element: dict[str, Any]) -> dict[str, Any]:
    """State and device memory (the compiled step's memory analysis), step and input times."""
    import jax

    from . import data
    from .augment import augmenter
    from .loop import create_train_state, train_step

    s = run.settings
    batch = jax.device_put(_batch_of(element, s.train_batch_size))
    state = create_train_state(agent, tx, batch, s.seed)
    aug = augmenter(enabled=s.augment, seed=s.seed, kwargs=s.augment_kwargs,
                    differently=s.augment_next_obs_goal_differently)
    step = jax.jit(lambda st, b: train_step(agent, tx, st, b, aug))
    t0 = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    device = None
    if mem is not None:
        device = int(mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
                     + mem.temp_size_in_bytes + mem.generated_code_size_in_bytes)
    state_bytes = _nbytes(state)
    out: dict[str, Any] = {"state_bytes": state_bytes, "checkpoint_bytes": state_bytes, "device_bytes": device,
                           "device_limit": _device_limit(), "compile_s": compile_s, "compiled": True}
    out["step_s"] = _time(lambda: compiled(state, batch), TIMED_STEPS)
    small = dataclasses.replace(run, settings=dataclasses.replace(
        s, shuffle_buffer_size=min(s.shuffle_buffer_size, PLAN_SHUFFLE_SLOTS)))
    t0 = time.perf_counter()
    it = data.train_iterator(small)
    next(it)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(TIMED_BATCHES):
        next(it)
    batch_s = (time.perf_counter() - t0) / TIMED_BATCHES
    filled = min(s.shuffle_buffer_size, PLAN_SHUFFLE_SLOTS)
    # The real buffer fills at the input rate: transitions per second = batch rows / seconds per batch.
    out["batch_s"] = batch_s
    out["fill_s"] = first_s + max(0, s.shuffle_buffer_size - filled) * batch_s / s.train_batch_size
    return out


def main(argv: list[str]) -> int:
    full = "--full" in argv
    paths = [a for a in argv if not a.startswith("--")]
    from .data import hide_gpus_from_tf

    hide_gpus_from_tf()
    runs = [Run.from_dict(d) for d in json.loads(Path(paths[0]).read_text())]
    seen: dict[str, dict[str, Any]] = {}
    for run in runs:
        print(json.dumps(estimate(run, full, seen)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
