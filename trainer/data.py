"""The input pipeline: BridgeData TFRecords (data_tools/schema.py) -> batches of transitions, in tf.data.

`make_train_dataset` reads like the recipe of the original `BridgeDataset` (reference §3), one named
function per step:

    files -> (train: shuffle + repeat) -> TFRecord -> enumerate            one element = one trajectory
    -> decode -> relabel actions -> normalise -> goals -> chunk            trajectory-level, [T, ...]
    -> unbatch -> (train: shuffle per source, weighted sampling)           transition-level
    -> (train: augment) -> batch(drop_remainder) -> prefetch

Every random draw is stateless and seeded from the element's position, so the batch sequence depends on
the seed alone: a resumed run replays it with `skip(step)` and sees exactly the batches it would have seen.
TensorFlow must not take the GPU from JAX: call `hide_gpus_from_tf()` before anything else touches TF.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bdv2.data_tools import schema
from bdv2.trainer.errors import DataError

if TYPE_CHECKING:
    import tensorflow as tf

    from bdv2.trainer.config import Run

Batch = dict[str, Any]
"""Nested dict of numpy arrays: observations/{image, proprio}, next_observations/..., goals/..., actions, ..."""

AUGMENT_SCALE = (0.8, 1.0)
AUGMENT_RATIO = (0.9, 1.1)
# The original's kwargs: brightness max_delta, contrast/saturation [lower, upper], hue max_delta.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.2, (0.8, 1.2), (0.8, 1.2), 0.1


@dataclass(frozen=True)
class PipelineConfig:
    batch_size: int
    seed: int = 42
    relabel_actions: bool = True
    goal_relabeling: str = "uniform"
    reached_proportion: float = 0.0
    augment: bool = False
    shuffle_buffer_size: int = 25000
    obs_horizon: int | None = None
    act_pred_horizon: int | None = None

    @classmethod
    def of(cls, run: Run, train: bool) -> PipelineConfig:
        s = run.settings
        return cls(batch_size=s.train_batch_size if train else (s.val_batch_size or s.train_batch_size),
                   seed=s.seed, relabel_actions=s.relabel_actions, goal_relabeling=s.goal_relabeling,
                   reached_proportion=s.reached_proportion, augment=s.augment and train,
                   shuffle_buffer_size=s.shuffle_buffer_size, obs_horizon=s.obs_horizon,
                   act_pred_horizon=s.act_pred_horizon)


@dataclass(frozen=True)
class Metadata:
    """Normalisation statistics, in the form `bdv2 data stats` writes (proprio has its own, unlike the original)."""

    action_mean: np.ndarray
    action_std: np.ndarray
    proprio_mean: np.ndarray
    proprio_std: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> Metadata:
        try:
            d = json.loads(Path(path).read_text())
            arrays = [np.asarray(d[k][m], dtype=np.float32) for k in ("action", "proprio") for m in ("mean", "std")]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}: not a normalisation metadata file ({type(e).__name__}: {e}); "
                            f"write one with `bdv2 data stats <data_root> --out {path}`") from e
        # A dimension that never moves (std 0) would divide by zero; leave it centred instead.
        a_mean, a_std, p_mean, p_std = arrays
        return cls(a_mean, np.where(a_std < 1e-8, 1.0, a_std).astype(np.float32),
                   p_mean, np.where(p_std < 1e-8, 1.0, p_std).astype(np.float32))


def hide_gpus_from_tf() -> None:
    """Keep TensorFlow on the CPU: otherwise it reserves most of the GPU memory and JAX runs out
    (flax examples/imagenet/main.py does the same)."""
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")


# -- trajectory-level transforms (one trajectory, time-major [T, ...]) ----------------------------

def decode(serialized: tf.Tensor) -> dict[str, Any]:
    import tensorflow as tf

    f = schema.parse_example(serialized, load_language=False)
    image = tf.ensure_shape(f["observations/images0"], [None, None, None, 3])  # [T, S, S, 3]
    next_image = tf.ensure_shape(f["next_observations/images0"], [None, None, None, 3])
    return {
        "observations": {"image": image, "proprio": tf.ensure_shape(f["observations/state"], [None, 7])},
        "next_observations": {"image": next_image,
                              "proprio": tf.ensure_shape(f["next_observations/state"], [None, 7])},
        "actions": tf.ensure_shape(f["actions"], [None, 7]),  # [T, 7]
        "terminals": f["terminals"],  # [T]
        "truncates": f["truncates"],
    }


def binarize_gripper(raw: tf.Tensor) -> tf.Tensor:
    """[T] gripper commands -> {0, 1}: scanning backwards, an in-between value (0.05..0.95) takes the
    state of the next open/closed step; a trailing in-between run keeps the raw last value (as the original)."""
    import tensorflow as tf

    open_, closed = raw > 0.95, raw < 0.05
    settled = tf.cast(open_, tf.float32)
    between = tf.logical_not(open_ | closed)

    def step(carry: tf.Tensor, i: tf.Tensor) -> tf.Tensor:
        return tf.where(between[i], carry, settled[i])

    backwards = tf.scan(step, tf.range(tf.shape(raw)[0] - 1, -1, -1), initializer=raw[-1])  # [T], reversed
    return tf.reverse(backwards, [0])


def relabel_actions(traj: dict[str, Any]) -> dict[str, Any]:
    """Actions become the reached state deltas (xyz + rpy) and the binarised gripper (reference §3.3)."""
    import tensorflow as tf

    delta = traj["next_observations"]["proprio"][:, :6] - traj["observations"]["proprio"][:, :6]  # [T, 6]
    gripper = binarize_gripper(traj["actions"][:, 6])[:, None]  # [T, 1]
    return {**traj, "actions": tf.concat([delta, gripper], axis=1)}


def normalise(traj: dict[str, Any], meta: Metadata) -> dict[str, Any]:
    """(x - mean) / std for actions and both proprio entries; proprio with its own statistics (the original
    used the action statistics, which puts proprio at ~30 sigma)."""
    def prop(obs: dict[str, Any]) -> dict[str, Any]:
        return {**obs, "proprio": (obs["proprio"] - meta.proprio_mean) / meta.proprio_std}

    return {**traj, "actions": (traj["actions"] - meta.action_mean) / meta.action_std,
            "observations": prop(traj["observations"]), "next_observations": prop(traj["next_observations"])}


def add_goals(traj: dict[str, Any], seed: tf.Tensor, strategy: str, reached_proportion: float) -> dict[str, Any]:
    """Goal relabeling (reference §3.5): goals come from next_observations; reward 0 when reached, else -1."""
    import tensorflow as tf

    length = tf.shape(traj["actions"])[0]
    idx = tf.range(length)  # [T]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    u = tf.random.stateless_uniform([length], seeds[0])  # [T]
    if strategy == "uniform":  # goal ~ U[i + 1, T)
        goal = tf.cast(tf.floor(u * tf.cast(length - idx - 1, tf.float32)), tf.int32) + idx + 1
    else:  # last_state_upweighted: offset ~ U{1..T-1}, clipped at the last state
        offset = 1 + tf.cast(tf.floor(u * tf.cast(tf.maximum(length - 1, 1), tf.float32)), tf.int32)
        goal = idx + offset
    goal = tf.minimum(goal, length - 1)
    reached = (tf.random.stateless_uniform([length], seeds[1]) < reached_proportion) | (idx == length - 1)
    goal = tf.where(reached, idx, goal)  # [T]
    goals = tf.nest.map_structure(lambda x: tf.gather(x, goal), traj["next_observations"])
    return {**traj, "goals": goals, "rewards": tf.where(goal == idx, 0, -1),
            "masks": tf.logical_not(traj["terminals"])}


def chunk(traj: dict[str, Any], obs_horizon: int | None, act_pred_horizon: int | None) -> dict[str, Any]:
    """Observation history and action chunks with edge padding (reference §3.6); goals stay unchunked."""
    import tensorflow as tf

    length = tf.shape(traj["actions"])[0]
    t = tf.range(length)[:, None]
    out = dict(traj)
    if act_pred_horizon is not None:
        idx = tf.minimum(t + tf.range(act_pred_horizon)[None], length - 1)  # [T, k]: repeats the last action
        out["actions"] = tf.gather(traj["actions"], idx)  # [T, k, 7]
    if obs_horizon is not None:
        idx = tf.maximum(t - obs_horizon + 1 + tf.range(obs_horizon)[None], 0)  # [T, h]: repeats the first frame
        for key in ("observations", "next_observations"):
            out[key] = tf.nest.map_structure(lambda x: tf.gather(x, idx), traj[key])  # [T, h, ...]
    return out


# -- transition-level transforms ------------------------------------------------------------------

def random_resized_crop(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One crop box for every image in [N, S, S, 3] (obs, history, next obs and goal alike), resized back.
    Scale, ratio and offsets all come from one uniform draw, reproducing the original's seed reuse."""
    import tensorflow as tf

    u = tf.random.stateless_uniform([], seed)
    scale = AUGMENT_SCALE[0] + (AUGMENT_SCALE[1] - AUGMENT_SCALE[0]) * u
    log_lo, log_hi = np.log(AUGMENT_RATIO[0]), np.log(AUGMENT_RATIO[1])
    ratio = tf.exp(log_lo + (log_hi - log_lo) * u)
    h = tf.clip_by_value(tf.sqrt(scale / ratio), 0.0, 1.0)
    w = tf.clip_by_value(tf.sqrt(scale * ratio), 0.0, 1.0)
    y0, x0 = u * (1.0 - h), u * (1.0 - w)
    n = tf.shape(images)[0]
    boxes = tf.tile(tf.stack([y0, x0, y0 + h, x0 + w])[None], [n, 1])  # [N, 4]
    return tf.image.crop_and_resize(images, boxes, tf.range(n), tf.shape(images)[1:3])


def augment_images(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """uint8 [N, S, S, 3] -> augmented uint8, the same draw for all N (reference §3.7)."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32) / 255.0  # [N, S, S, 3] in [0, 1]
    x = tf.clip_by_value(random_resized_crop(x, seed), 0.0, 1.0)
    x = tf.clip_by_value(tf.image.stateless_random_brightness(x, BRIGHTNESS, seed), 0.0, 1.0)
    x = tf.clip_by_value(tf.image.stateless_random_contrast(x, *CONTRAST, seed), 0.0, 1.0)
    x = tf.clip_by_value(tf.image.stateless_random_saturation(x, *SATURATION, seed), 0.0, 1.0)
    x = tf.clip_by_value(tf.image.stateless_random_hue(x, HUE, seed), 0.0, 1.0)
    return tf.cast(x * 255.0, tf.uint8)  # truncation, not rounding, as the original


def augment(index: tf.Tensor, tr: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    seed = tf.stack([index, index])
    parts = [tr["observations"]["image"], tr["next_observations"]["image"], tr["goals"]["image"]]
    shapes = [tf.shape(p) for p in parts]
    flat = [tf.reshape(p, [-1, s[-3], s[-2], 3]) for p, s in zip(parts, shapes, strict=True)]  # [h or 1, S, S, 3]
    sizes = [tf.shape(f)[0] for f in flat]
    out = tf.split(augment_images(tf.concat(flat, 0), seed), sizes)
    obs, nxt, goal = (tf.reshape(o, s) for o, s in zip(out, shapes, strict=True))
    return {**tr, "observations": {**tr["observations"], "image": obs},
            "next_observations": {**tr["next_observations"], "image": nxt}, "goals": {**tr["goals"], "image": goal}}


# -- assembly -------------------------------------------------------------------------------------

def _transitions(files: Sequence[str], meta: Metadata, cfg: PipelineConfig, seed: int, train: bool) -> tf.data.Dataset:
    import tensorflow as tf

    if not files:
        raise DataError("no TFRecord files given")
    ds = tf.data.Dataset.from_tensor_slices(list(files))
    if train:  # a new, seeded file order every epoch
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = tf.data.TFRecordDataset(ds, num_parallel_reads=tf.data.AUTOTUNE).enumerate()

    def per_trajectory(i: tf.Tensor, serialized: tf.Tensor) -> dict[str, Any]:
        traj = decode(serialized)  # [T, ...]
        if cfg.relabel_actions:
            traj = relabel_actions(traj)
        traj = normalise(traj, meta)
        traj = add_goals(traj, tf.stack([tf.cast(seed, tf.int64), i]), cfg.goal_relabeling, cfg.reached_proportion)
        traj = chunk(traj, cfg.obs_horizon, cfg.act_pred_horizon)
        del traj["truncates"]
        return traj

    return ds.map(per_trajectory, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def make_train_dataset(sources: Sequence[tuple[Sequence[str], float]], meta: Metadata,
                       cfg: PipelineConfig) -> tf.data.Dataset:
    """An endless, deterministic (given cfg.seed) dataset of batches [B, ...] from weighted sources."""
    import tensorflow as tf

    datasets = []
    for i, (files, weight) in enumerate(sources):
        ds = _transitions(files, meta, cfg, cfg.seed + i, train=True)
        # Each source gets its share of the shuffle buffer, as the original.
        datasets.append(ds.shuffle(max(1, int(cfg.shuffle_buffer_size * weight)), seed=cfg.seed + i))
    weights = [w for _, w in sources]
    ds = datasets[0] if len(datasets) == 1 else tf.data.Dataset.sample_from_datasets(
        datasets, weights, seed=cfg.seed, stop_on_empty_dataset=True)
    if cfg.augment:
        ds = ds.enumerate(start=cfg.seed).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(cfg.batch_size, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)


def make_val_dataset(files: Sequence[str], meta: Metadata, cfg: PipelineConfig) -> tf.data.Dataset:
    """One pass over the validation files, fixed goals, no augmentation; the last batch may be partial."""
    import tensorflow as tf

    ds = _transitions(files, meta, cfg, cfg.seed, train=False)
    return ds.batch(cfg.batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE)


def train_iterator(run: Run, start_step: int = 0) -> Iterator[Batch]:
    """Batches for steps start_step, start_step + 1, ...: the same ones an uninterrupted run gets."""
    meta = Metadata.load(run.task.metadata)
    sources = [(s.train_files, s.weight) for s in run.task.sources]
    ds = make_train_dataset(sources, meta, PipelineConfig.of(run, train=True))
    # Deterministic pipeline: skipping replays the input (no training) up to the checkpoint.
    return iter(ds.skip(start_step).as_numpy_iterator())


def val_batches(run: Run, devices: int, limit: int | None) -> Iterator[Batch]:
    """Validation batches, each trimmed to a multiple of `devices`; a split smaller than one batch yields its
    rows (trimmed) instead of nothing, and an empty split yields nothing."""
    files = [f for s in run.task.sources for f in s.val_files]
    if not files:
        return
    meta = Metadata.load(run.task.metadata)
    ds = make_val_dataset(files, meta, PipelineConfig.of(run, train=False))
    for n, batch in enumerate(ds.as_numpy_iterator()):
        if limit is not None and limit > 0 and n >= limit:
            return
        rows = len(batch["actions"]) // devices * devices
        if rows:
            yield batch if rows == len(batch["actions"]) else _take(batch, rows)


def _take(batch: Any, rows: int) -> Any:
    if isinstance(batch, dict):
        return {k: _take(v, rows) for k, v in batch.items()}
    return batch[:rows]
