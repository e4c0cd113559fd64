"""Helpers shared by the trainer tests: a tiny TFRecord tree written from numpy literals by data_tools' own
writer (no JPEGs, ~1 s) with its metadata.json, a global: block for it, and a multi_train.yaml writer.

Imported as a module (``from . import helpers``); conftest.py holds only fixtures."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bdv2.data_tools import schema

RLDS_SAMPLE_ARGS: dict[str, Any] = {"episodes": {"train": 6, "val": 3}, "steps": 8, "image_size": 64,
                                    "shards_per_split": 1}
"""The generated RLDS sample of conftest.rlds_generated (data_tools.rlds.sample.write_rlds_sample's arguments)."""

TASKS = ("kitchen/put_carrot", "kitchen/open_drawer", "sink/sweep")
IM = 16  # image side


def trajectory(rng: np.random.Generator, length: int) -> dict[str, np.ndarray]:
    """A learnable toy trajectory: the gripper closes half-way, the arm drifts (+2 std per step after
    normalisation, so the policy has an offset to learn), the image brightens over time."""
    state = np.zeros((length + 1, 7), np.float32)
    steps = rng.normal(0, 0.01, size=(length, 6)) + 0.02
    state[1:, :6] = np.cumsum(steps, axis=0)
    grip = (np.arange(length) < length // 2).astype(np.float32)
    state[1:, 6] = grip
    images = np.stack([np.full((IM, IM, 3), 20 + 200 * t // length, np.uint8) for t in range(length + 1)])
    actions = np.concatenate([steps, grip[:, None]], axis=1).astype(np.float32)
    return schema.make_arrays(images, state, actions, ["do it"])


def write_tree(root: Path, n_train: int = 3, n_val: int = 1, length: int = 8, seed: int = 0) -> Path:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for task in TASKS:
        for split, n in (("train", n_train), ("val", n_val)):
            out = root / task / split
            out.mkdir(parents=True)
            with tf.io.TFRecordWriter(str(out / "out.tfrecord")) as w:
                for _ in range(n):
                    w.write(schema.encode_example(trajectory(rng, length)))
    stats = {"action": {"mean": [0.0] * 6 + [0.5], "std": [0.01] * 6 + [0.5]},
             "proprio": {"mean": [0.1] * 6 + [0.5], "std": [0.05] * 6 + [0.5]}}
    (root / "metadata.json").write_text(json.dumps(stats))
    return root


def base_global(tfdata: Path, save_dir: Path, **over: Any) -> dict[str, Any]:
    g: dict[str, Any] = {
        "data_root": str(tfdata), "save_dir": str(save_dir), "train_batch_size": 8, "val_batch_size": 8,
        "num_steps": 20, "eval_interval": 10, "save_interval": 10, "log_interval": 5, "eval_batches": 2,
        "warmup_steps": 2, "learning_rate": 3e-3, "encoder": "tiny", "hidden_dims": [32, 32],
        "shuffle_buffer_size": 64, "jax_platform_name": "cpu", "keep_checkpoints": 2,
    }
    g.update(over)
    return g


def write_yaml(path: Path, data: dict[str, Any] | str) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``cond`` every 0.2 s until it holds; fail naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def logged_step(workdir: Path) -> int:
    """The step of the last row of a run's metrics.jsonl; 0 while there is none (or it is being written)."""
    try:
        lines = (workdir / "metrics.jsonl").read_text().splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError, IndexError):
        return 0
