"""The trajectory- and transition-level steps of the input pipeline (data.py assembles them), each a pure
tf function, after the original's BridgeDataset
(https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/bridge_dataset.py).

Every random draw is stateless, seeded by the caller from the element's position (see data.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, assert_never

import numpy as np

from bdv2.data_tools import schema
from bdv2.trainer.settings import GoalRelabeling

if TYPE_CHECKING:
    import tensorflow as tf

    from bdv2.trainer.data import Metadata

AUGMENT_SCALE = (0.8, 1.0)
AUGMENT_RATIO = (0.9, 1.1)
# The original's kwargs: brightness max_delta, contrast/saturation [lower, upper], hue max_delta.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.2, (0.8, 1.2), (0.8, 1.2), 0.1


# -- trajectory-level transforms (one trajectory, time-major [T, ...]) ----------------------------

def decode(serialized: tf.Tensor) -> dict[str, Any]:
    """One serialized schema Example -> a trajectory (observations/next_observations/actions/...)."""
    return from_features(schema.parse_example(serialized, load_language=False))


def from_features(f: dict[str, Any]) -> dict[str, Any]:
    """schema.parse_example's flat keys (also what the RLDS adapter yields) -> a nested trajectory."""
    import tensorflow as tf

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
    """Actions become the reached state deltas (xyz + rpy) and the binarised gripper (the
    original's _process_actions and _binarize_gripper_actions in jaxrl_m/data/bridge_dataset.py)."""
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


def add_goals(traj: dict[str, Any], seed: tf.Tensor, strategy: str | GoalRelabeling,
              reached_proportion: float) -> dict[str, Any]:
    """Goal relabeling (https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/tf_goal_relabeling.py):
    goals come from next_observations; reward 0 when reached, else -1."""
    import tensorflow as tf

    length = tf.shape(traj["actions"])[0]
    idx = tf.range(length)  # [T]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    u = tf.random.stateless_uniform([length], seeds[0])  # [T]
    strategy = GoalRelabeling(strategy)
    match strategy:
        case GoalRelabeling.UNIFORM:  # goal ~ U[i + 1, T)
            goal = tf.cast(tf.floor(u * tf.cast(length - idx - 1, tf.float32)), tf.int32) + idx + 1
        case GoalRelabeling.LAST_STATE_UPWEIGHTED:  # offset ~ U{1..T-1}, clipped at the last state
            offset = 1 + tf.cast(tf.floor(u * tf.cast(tf.maximum(length - 1, 1), tf.float32)), tf.int32)
            goal = idx + offset
        case _:
            assert_never(strategy)
    goal = tf.minimum(goal, length - 1)
    reached = (tf.random.stateless_uniform([length], seeds[1]) < reached_proportion) | (idx == length - 1)
    goal = tf.where(reached, idx, goal)  # [T]
    goals = tf.nest.map_structure(lambda x: tf.gather(x, goal), traj["next_observations"])
    return {**traj, "goals": goals, "rewards": tf.where(goal == idx, 0, -1),
            "masks": tf.logical_not(traj["terminals"])}


def chunk(traj: dict[str, Any], obs_horizon: int | None, act_pred_horizon: int | None) -> dict[str, Any]:
    """Observation history and action chunks with edge padding (the original's _chunk_act_obs in
    jaxrl_m/data/bridge_dataset.py); goals stay unchunked."""
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
    """uint8 [N, S, S, 3] -> augmented uint8, the same draw for all N
    (https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/tf_augmentations.py)."""
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
