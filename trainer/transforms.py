"""The trajectory-level steps of the input pipeline (data.py assembles them), each a pure tf function, after
the original's BridgeDataset (https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/bridge_dataset.py).
Image augmentation is not here: it runs on the device batch (augment.py).

Every random draw is stateless, seeded by the caller from the element's position (see data.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bdv2.data_tools import schema
from bdv2.data_tools.trajectory import GRIPPER_CLOSED, GRIPPER_OPEN

from .model import Metadata
from .settings import GoalRelabeling

if TYPE_CHECKING:
    import tensorflow as tf


# -- trajectory-level transforms (one trajectory, time-major [T, ...]) ----------------------------

def decode(serialized: tf.Tensor, load_language: bool = False) -> dict[str, Any]:
    """One serialized schema Example -> a trajectory (observations/next_observations/actions/...)."""
    return from_features(schema.parse_example(serialized, load_language=load_language), load_language)


def from_features(f: dict[str, Any], load_language: bool = False) -> dict[str, Any]:
    """schema.parse_example's flat keys (also what the RLDS adapter yields) -> a nested trajectory; with
    load_language also "language" [L] (and the adapter's "language_embedding" [L, E]), for language.py."""
    import tensorflow as tf

    language: dict[str, Any] = {k: f[k] for k in ("language", "language_embedding") if load_language and k in f}

    image = tf.ensure_shape(f["observations/images0"], [None, None, None, 3])  # [T, S, S, 3]
    next_image = tf.ensure_shape(f["next_observations/images0"], [None, None, None, 3])
    return {
        "observations": {"image": image, "proprio": tf.ensure_shape(f["observations/state"], [None, 7])},
        "next_observations": {"image": next_image,
                              "proprio": tf.ensure_shape(f["next_observations/state"], [None, 7])},
        "actions": tf.ensure_shape(f["actions"], [None, 7]),  # [T, 7]
        "terminals": f["terminals"],  # [T]
        "truncates": f["truncates"],
        **language,
    }


def binarize_gripper(raw: tf.Tensor) -> tf.Tensor:
    """[T] gripper commands -> {0, 1}: scanning backwards, an in-between value (GRIPPER_CLOSED..GRIPPER_OPEN)
    takes the state of the next open/closed step; a trailing in-between run keeps the raw last value (as the
    original). The numpy form, for the statistics: data_tools.trajectory.binarize_gripper (parity-tested)."""
    import tensorflow as tf

    open_, closed = raw > GRIPPER_OPEN, raw < GRIPPER_CLOSED
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
              reached_proportion: float, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Goal relabeling (https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/tf_goal_relabeling.py):
    goals come from next_observations; reward 0 when reached, else -1. ``options``: the strategy's own
    arguments (settings.GOAL_RELABELING_KWARGS: geometric's discount, delta_goals' goal_delta)."""
    import tensorflow as tf

    strategy = GoalRelabeling(strategy)
    options = options or {}
    needed = {GoalRelabeling.GEOMETRIC: "discount", GoalRelabeling.DELTA_GOALS: "goal_delta"}.get(strategy)
    if needed and needed not in options:
        raise ValueError(f"goal relabeling {strategy.value!r} needs options[{needed!r}] (goal_relabeling_kwargs)")
    seeds = tf.random.experimental.stateless_split(seed, 2)
    if strategy is GoalRelabeling.DELTA_GOALS:
        return _delta_goals(traj, seeds[0], tuple(options["goal_delta"]))
    length = tf.shape(traj["actions"])[0]
    idx = tf.range(length)  # [T]
    goal = goal_indices(strategy, tf.random.stateless_uniform([length], seeds[0]), float(options.get("discount", 1)))
    reached = (tf.random.stateless_uniform([length], seeds[1]) < reached_proportion) | (idx == length - 1)
    goal = tf.where(reached, idx, goal)  # [T]
    goals = tf.nest.map_structure(lambda x: tf.gather(x, goal), traj["next_observations"])
    return {**traj, "goals": goals, "rewards": tf.where(reached, 0, -1), "masks": tf.logical_not(traj["terminals"])}


def goal_indices(strategy: GoalRelabeling, u: tf.Tensor, discount: float = 1.0) -> tf.Tensor:
    """Each step's future goal index (before the reached override) from one uniform draw ``u`` [T] in [0, 1):
    uniform: the original's formula, bit for bit; last_state_upweighted: offset 1 + floor(u (T - 1)), clipped
    at the last state; geometric: the inverse CDF of P(goal = j) ~ discount^(j - i) over j in (i, T), the
    distribution the original draws with tf.random.categorical."""
    import tensorflow as tf

    length = tf.shape(u)[0]
    idx = tf.range(length)
    # if/elif rather than match: tf.data traces this with AutoGraph, which cannot convert match statements.
    if strategy is GoalRelabeling.UNIFORM or (strategy is GoalRelabeling.GEOMETRIC and discount >= 1.0):
        low = tf.cast(idx + 1, tf.float32)  # goal ~ U[i + 1, T); geometric with discount 1: every future state alike
        goal = tf.cast(u * (tf.cast(length, tf.float32) - low) + low, tf.int32)
    elif strategy is GoalRelabeling.LAST_STATE_UPWEIGHTED:  # offset ~ U{1..T-1}, clipped at the last state
        goal = idx + 1 + tf.cast(tf.floor(u * tf.cast(tf.maximum(length - 1, 1), tf.float32)), tf.int32)
    elif strategy is GoalRelabeling.GEOMETRIC:  # k in 1..n, P(k) ~ d^k: k = ceil(log(1 - u (1 - d^n)) / log d)
        n = tf.cast(length - 1 - idx, tf.float32)  # future states of step i
        log_d = float(np.log(discount))
        k = tf.math.ceil(tf.math.log1p(u * tf.math.expm1(n * log_d)) / log_d)
        goal = idx + tf.cast(tf.clip_by_value(k, 1.0, tf.maximum(n, 1.0)), tf.int32)
    else:
        raise ValueError(f"{strategy.value} picks goals with delta_goal_indices")
    return tf.minimum(goal, length - 1)


def delta_goal_indices(u: tf.Tensor, length: tf.Tensor, goal_delta: tuple[int, int]) -> tf.Tensor:
    """delta_goals' goal of step i < T - low: ~ U[i + low, min(T + 1, i + high)) among the T + 1 observations
    (the original's formula, bit for bit, from the same draw ``u`` [T - low])."""
    import tensorflow as tf

    idx = tf.range(tf.shape(u)[0])
    low = tf.cast(idx + goal_delta[0], tf.float32)
    high = tf.cast(tf.minimum(length + 1, idx + goal_delta[1]), tf.float32)
    return tf.minimum(tf.cast(u * (high - low) + low, tf.int32), length)


def _delta_goals(traj: dict[str, Any], seed: tf.Tensor, goal_delta: tuple[int, int]) -> dict[str, Any]:
    """The original's delta_goals: the trajectory loses its last ``low`` steps; goals come from the observations
    plus the final next_observation. Rewards/masks as the other strategies, so every batch has the same keys."""
    import tensorflow as tf

    length = tf.shape(traj["actions"])[0]
    keep = tf.maximum(length - goal_delta[0], 0)
    goal = delta_goal_indices(tf.random.stateless_uniform([keep], seed), length, goal_delta)  # [T - low]
    every_obs = tf.nest.map_structure(lambda o, n: tf.concat([o, n[-1:]], 0),
                                      traj["observations"], traj["next_observations"])  # [T + 1, ...]
    out = tf.nest.map_structure(lambda x: x[:keep], traj)
    out["goals"] = tf.nest.map_structure(lambda x: tf.gather(x, goal), every_obs)
    out["rewards"] = tf.where(goal == tf.range(keep) + 1, 0, -1)  # the goal is this step's next observation
    out["masks"] = tf.logical_not(out["terminals"])
    return out


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
