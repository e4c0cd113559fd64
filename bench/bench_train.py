"""Trainer throughput on this machine's CPU, one run, two figures:

1. input pipeline: samples/s of the full train pipeline (decode, relabel, normalise, goals, augment, batch)
   versus a read-and-parse-only baseline (TFRecordDataset + schema.parse_example) on the same TFRecords;
2. gc_bc train steps/s at a fixed small config (tiny encoder, 64 px, batch 16, MLP 128x128), compile excluded.

    python bench/bench_train.py [--data TFRECORD_ROOT] [--seconds 10]

Without --data it builds the sample data (`bdv2 data sample` + raw-to-tfrecord at 64 px + stats) in a temp dir.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any


def build_sample(root: Path) -> Path:
    from bdv2.data_tools.convert import raw_to_tfrecord
    from bdv2.data_tools.sample import write_sample
    from bdv2.data_tools.summary import compute_stats
    from bdv2.fsutil import write_json_atomic

    raw = write_sample(root / "raw", n_trajectories=6, n_frames=30)
    tfr = root / "tfrecord"
    raw_to_tfrecord(raw, tfr, depth=5, num_workers=2, im_size=64)
    write_json_atomic(tfr / "metadata.json", compute_stats(tfr))
    return tfr


def timed(it: Any, seconds: float, rows: Any) -> float:
    """Items per second over `seconds` after one warm-up item."""
    next(it)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += rows(next(it))
    return n / (time.perf_counter() - t0)


def main() -> None:
    from bdv2.console import quiet_native_logs

    quiet_native_logs()  # TensorFlow's start-up lines stay out of the output, as in bdv2's commands
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    data_root = args.data or build_sample(Path(tmp.name))

    from bdv2.trainer import config, data, loop
    from bdv2.trainer.agents import make_agent

    data.hide_gpus_from_tf()
    import jax
    import tensorflow as tf

    from bdv2.data_tools import schema

    exp = config.expand({"global": {"data_root": str(data_root), "save_dir": tmp.name, "train_batch_size": 16,
                                    "encoder": "tiny", "hidden_dims": [128, 128], "shuffle_buffer_size": 1000,
                                    "jax_platform_name": "cpu"},
                         "matrix": {"algos": ["gc_bc"], "tasks": ["."]}}, "bench")
    run = exp.runs[0]
    files = [f for s in run.task.sources for f in s.train_files]
    parse_only = (tf.data.Dataset.from_tensor_slices(files).repeat()
                  .interleave(tf.data.TFRecordDataset, num_parallel_calls=tf.data.AUTOTUNE)
                  .map(schema.parse_example, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    base = timed(iter(parse_only.as_numpy_iterator()), args.seconds, lambda t: len(t["actions"]))
    full = timed(data.train_iterator(run), args.seconds, lambda b: len(b["actions"]))
    print(f"input pipeline ({len(files)} files, 64 px, augment on, batch 16): {full:,.0f} samples/s; "
          f"read+parse only: {base:,.0f} samples/s ({full / base:.2f}x)")

    agent, tx = make_agent(run), loop.make_optimizer(run)
    batch = next(data.train_iterator(run))
    state = loop.create_train_state(agent, tx, batch, 0)
    step = jax.jit(lambda st, b: loop.train_step(agent, tx, st, b), donate_argnums=0)
    state, m = step(state, batch)  # compile
    jax.block_until_ready(m)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        state, m = step(state, batch)
        n += 1
    jax.block_until_ready(m)
    rate = n / (time.perf_counter() - t0)
    print(f"gc_bc train step (tiny encoder, 64 px, batch 16, MLP 128x128, {jax.devices()[0].platform}): "
          f"{rate:.1f} steps/s = {rate * 16:,.0f} samples/s")
    tmp.cleanup()


if __name__ == "__main__":
    main()
