"""Trainer throughput on this machine's CPU, in one run on the same TFRecords:

1. input pipeline, 128 px, batch 64, augmentation on, uniform goals: samples/s of the original BridgeDataset
   (https://github.com/rail-berkeley/bridge_data_v2, found via BDV2_ORIGINAL, default ../bridge_data_v2 beside
   this repo; skipped when absent) and of bdv2's train_iterator, measured in alternating rounds, and their
   ratio; plus a read-and-parse-only baseline. bdv2 augments on the device batch inside the jitted train step
   (trainer/augment.py), so its pipeline figure excludes augmentation; the device cost is printed beside it:
   the augmentation jitted on this CPU, and its FLOPs against a ResNet-34 train step;
2. gc_bc train steps/s at a fixed small config (tiny encoder, 64 px, batch 16, MLP 128x128, augmentation in
   the step), compile excluded.

    python bench/bench_train.py [--data TFRECORD_ROOT] [--seconds 10] [--rounds 3]

Without --data it writes synthetic trajectories (data_tools.schema, 128 px, 25-45 steps) to a temp dir. The
machine may be shared: compare the ratios of one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SIDE, BATCH, BUFFER = 128, 64, 2000
AUG_FLOPS_PER_PIXEL = 4 * SIDE * 3 + 100
"""Crop: two [S, S] x [S, S x 3] products per image (2 x 2 S FLOPs per pixel and channel); the rest (brightness,
contrast, one HSV round trip, 5 clips, casts): ~100."""
RESNET34_TRAIN_FLOPS = 3 * 2 * 3.6e9 * (SIDE / 224) ** 2
"""3.6 GMAC forward at 224 px (He et al. 2016), scaled to 128 px, x2 FLOP/MAC, x3 for forward + backward."""


def original_root() -> Path | None:
    """The original checkout: BDV2_ORIGINAL, else ../bridge_data_v2 beside this repo (tests/original_code.py)."""
    value = os.environ.get("BDV2_ORIGINAL")
    root = Path(value).expanduser() if value else Path(__file__).resolve().parents[1].parent / "bridge_data_v2"
    return root if (root / "jaxrl_m").is_dir() else None


def write_synthetic(root: Path, trajectories: int = 40) -> Path:
    import numpy as np
    import tensorflow as tf

    from bdv2.data_tools import schema

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (8, SIDE, SIDE, 3)).astype(np.float32)
    for k, task in enumerate(("kitchen/a", "kitchen/b", "sink/c", "sink/d")):
        out = root / task / "train"
        out.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(out / "out.tfrecord")) as w:
            for _ in range(trajectories // 4):
                n = int(rng.integers(25, 45))
                state = np.cumsum(rng.normal(0, 0.01, (n + 1, 7)), 0).astype(np.float32)
                state[:, 6] = np.arange(n + 1) < n // 2
                images = np.stack([np.clip(texture[t % 8] * 0.7 + 10 * k, 0, 255) for t in range(n + 1)])
                actions = np.concatenate([np.diff(state[:, :6], axis=0), state[1:, 6:]], 1)
                w.write(schema.encode_example(schema.make_arrays(images.astype(np.uint8), state, actions, ["x"])))
    stats = {"action": {"mean": [0.0] * 7, "std": [0.01] * 6 + [0.5]},
             "proprio": {"mean": [0.0] * 7, "std": [0.05] * 6 + [0.5]}}
    (root / "metadata.json").write_text(json.dumps(stats))
    return root


def timed(it: Iterator[Any], seconds: float, rows: Callable[[Any], int]) -> float:
    """Items per second over `seconds` after one warm-up item."""
    next(it)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += rows(next(it))
    return n / (time.perf_counter() - t0)


def original_iterator(root: Path, files: list[str], meta: dict[str, Any]) -> Iterator[Any]:
    sys.path.insert(0, str(root))
    from jaxrl_m.data.bridge_dataset import BridgeDataset  # its TF-only modules work with bdv2's TF

    from bdv2.trainer.augment import DEFAULT_KWARGS

    ds = BridgeDataset([files], seed=42, action_proprio_metadata=meta, batch_size=BATCH, shuffle_buffer_size=BUFFER,
                       augment=True, augment_kwargs=DEFAULT_KWARGS, goal_relabeling_strategy="uniform",
                       goal_relabeling_kwargs={"reached_proportion": 0.0})
    return iter(ds.iterator())


def device_augment_rate(seconds: float) -> float:
    """Samples/s of bdv2's augmentation (obs, next obs, goal) jitted on this machine's default JAX device."""
    import jax
    import numpy as np

    from bdv2.trainer.augment import DEFAULT_KWARGS, augment_batch

    images = np.random.default_rng(0).integers(0, 256, (BATCH, SIDE, SIDE, 3)).astype(np.uint8)
    batch = jax.device_put({k: {"image": images} for k in ("observations", "next_observations", "goals")})
    fn = jax.jit(lambda b, step: augment_batch(b, jax.random.fold_in(jax.random.PRNGKey(0), step), DEFAULT_KWARGS,
                                               False))
    jax.block_until_ready(fn(batch, 0))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        jax.block_until_ready(fn(batch, n))
        n += 1
    return n * BATCH / (time.perf_counter() - t0)


def bench_pipeline(data_root: Path, tmp: str, seconds: float, rounds: int) -> None:
    import tensorflow as tf

    from bdv2.data_tools import schema
    from bdv2.trainer import config, data

    exp = config.expand({"global": {"data_root": str(data_root), "save_dir": tmp, "train_batch_size": BATCH,
                                    "encoder": "tiny", "shuffle_buffer_size": BUFFER, "augment": True,
                                    "goal_relabeling": "uniform", "jax_platform_name": "cpu"},
                         "matrix": {"algos": ["gc_bc"], "tasks": ["."]}}, "bench")
    run = exp.runs[0]
    files = [f for s in run.task.sources for f in s.train_files]
    parse_only = (tf.data.Dataset.from_tensor_slices(files).repeat()
                  .interleave(tf.data.TFRecordDataset, num_parallel_calls=tf.data.AUTOTUNE)
                  .map(schema.parse_example, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    base = timed(iter(parse_only.as_numpy_iterator()), seconds, lambda t: len(t["actions"]))
    root = original_root()
    ours_it = data.train_iterator(run)
    theirs_it = original_iterator(root, files, json.loads(Path(run.task.metadata).read_text())) if root else None
    ours, theirs = [], []
    for _ in range(rounds):  # alternating rounds: a shared machine's load changes for both alike
        ours.append(timed(ours_it, seconds, lambda b: len(b["actions"])))
        if theirs_it is not None:
            theirs.append(timed(theirs_it, seconds, lambda b: len(b["actions"])))
    o = statistics.median(ours)
    print(f"input pipeline ({len(files)} files, {SIDE} px, batch {BATCH}, augmentation on, uniform goals, "
          f"shuffle buffer {BUFFER}; median of {rounds} rounds of {seconds:g} s):")
    print(f"  read+parse only          {base:9,.0f} samples/s")
    if theirs:
        t = statistics.median(theirs)
        print(f"  original BridgeDataset   {t:9,.0f} samples/s   (augments on the CPU, per transition)")
        print(f"  bdv2 train_iterator      {o:9,.0f} samples/s   ({o / t:.2f}x the original; augments on the device)")
    else:
        print("  original BridgeDataset   skipped: not found (set BDV2_ORIGINAL to a bridge_data_v2 checkout)")
        print(f"  bdv2 train_iterator      {o:9,.0f} samples/s   (augments on the device)")
    aug = device_augment_rate(seconds)
    flops = 3 * SIDE * SIDE * AUG_FLOPS_PER_PIXEL
    print(f"  bdv2 augmentation, jitted on this CPU: {aug:,.0f} samples/s; pipeline + augmentation on one CPU: "
          f"{1 / (1 / o + 1 / aug):,.0f} samples/s")
    print(f"  device cost: ~{flops / 1e6:.0f} MFLOP/sample vs ~{RESNET34_TRAIN_FLOPS / 1e9:.1f} GFLOP/sample for a "
          f"ResNet-34 train step at {SIDE} px ({flops / RESNET34_TRAIN_FLOPS:.2%})")


def bench_step(data_root: Path, tmp: str, seconds: float) -> None:
    import jax

    from bdv2.trainer import config, data, loop
    from bdv2.trainer.agents import make_agent
    from bdv2.trainer.augment import augmenter

    exp = config.expand({"global": {"data_root": str(data_root), "save_dir": tmp, "train_batch_size": 16,
                                    "encoder": "tiny", "hidden_dims": [128, 128], "shuffle_buffer_size": 1000,
                                    "jax_platform_name": "cpu"},
                         "matrix": {"algos": ["gc_bc"], "tasks": ["."]}}, "bench")
    run = exp.runs[0]
    s = run.settings
    agent, tx = make_agent(run), loop.make_optimizer(run)
    aug = augmenter(enabled=s.augment, seed=s.seed, kwargs=s.augment_kwargs,
                    differently=s.augment_next_obs_goal_differently)
    batch = next(data.train_iterator(run))
    side = batch["observations"]["image"].shape[1]
    state = loop.create_train_state(agent, tx, batch, 0)
    step = jax.jit(lambda st, b: loop.train_step(agent, tx, st, b, aug), donate_argnums=0)
    state, m = step(state, batch)  # compile
    jax.block_until_ready(m)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        state, m = step(state, batch)
        n += 1
    jax.block_until_ready(m)
    rate = n / (time.perf_counter() - t0)
    print(f"gc_bc train step (tiny encoder, {side} px, batch 16, MLP 128x128, augmentation in the step, "
          f"{jax.devices()[0].platform}): {rate:.1f} steps/s = {rate * 16:,.0f} samples/s")


def main() -> None:
    from bdv2.console import quiet_native_logs

    quiet_native_logs()  # TensorFlow's start-up lines stay out of the output, as in bdv2's commands
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from bdv2.trainer import data

    data.hide_gpus_from_tf()
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data or write_synthetic(Path(tmp) / "tfrecord")
        bench_pipeline(data_root, tmp, args.seconds, args.rounds)
        bench_step(data_root, tmp, args.seconds)


if __name__ == "__main__":
    main()
