"""Goal relabeling against the original's functions
(https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/tf_goal_relabeling.py):

* where the goal index is a formula of one uniform draw (uniform, delta_goals; last_state_upweighted given the
  same integer offsets), both get the same draws and must pick the same goals;
* for every strategy, the distribution of goal offsets over many trajectories (each side with its own random
  numbers) matches the original's and the exact one, within 5 standard errors of the draw count;
* goal_relabeling_kwargs is checked with errors that name the key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from original_code import import_original

from bdv2.trainer import data, model, transforms
from bdv2.trainer.errors import ConfigError
from bdv2.trainer.settings import GoalRelabeling, Settings, build_settings

N_DRAWS = 3000
T = 10


@pytest.fixture(scope="module")
def tf() -> Any:
    data.hide_gpus_from_tf()
    import tensorflow as tf

    return tf


@pytest.fixture(scope="module")
def original(tf: Any) -> Any:
    import_original()
    from jaxrl_m.data import tf_goal_relabeling

    return tf_goal_relabeling


def _traj(tf: Any, length: int = T) -> dict[str, Any]:
    """Observation t has proprio t and next observation t has t + 1: a goal's proprio names the step it came from
    (goal index g among next_observations reads g + 1; among all T + 1 observations, g)."""
    t = tf.cast(tf.range(length), tf.float32)[:, None] * tf.ones([1, 7])
    img = tf.zeros([length, 2, 2, 3], tf.uint8)
    return {"observations": {"image": img, "proprio": t}, "next_observations": {"image": img, "proprio": t + 1},
            "actions": t, "terminals": tf.range(length) == length - 1, "truncates": tf.zeros([length], tf.bool)}


@contextmanager
def _draws(monkeypatch: pytest.MonkeyPatch, tf: Any, name: str, values: list[np.ndarray]) -> Iterator[None]:
    """tf.random.<name> returns ``values`` in order (shapes checked), then the patch is undone."""
    queue = list(values)

    def fake(shape: Any, *args: Any, **kwargs: Any) -> Any:
        v = queue.pop(0)
        assert list(np.shape(v)) == [int(s) for s in shape]
        return tf.constant(v, dtype=kwargs.get("dtype", tf.float32))

    with monkeypatch.context() as m:
        m.setattr(tf.random, name, fake)
        yield
    assert not queue, "a draw was not used"


def _goal_index(traj: dict[str, Any]) -> np.ndarray:
    return np.asarray(traj["goals"]["proprio"])[..., 0].astype(int)


@pytest.mark.parametrize("reached", [0.0, 0.3])
def test_uniform_same_draws_same_goals(tf: Any, original: Any, monkeypatch: pytest.MonkeyPatch,
                                       reached: float) -> None:
    rng = np.random.default_rng(1)
    for length in (1, 2, 5, T, 37):
        u_goal, u_reached = rng.random(length, np.float32), rng.random(length, np.float32)
        u_goal[0] = np.nextafter(np.float32(1), np.float32(0))  # the largest draw stays in range
        with _draws(monkeypatch, tf, "uniform", [u_goal, u_reached]):
            theirs = original.uniform(_traj(tf, length), reached_proportion=reached)
        with _draws(monkeypatch, tf, "stateless_uniform", [u_goal, u_reached]):
            ours = transforms.add_goals(_traj(tf, length), tf.constant([0, 0], tf.int64), "uniform", reached)
        np.testing.assert_array_equal(_goal_index(ours), _goal_index(theirs))
        np.testing.assert_array_equal(ours["rewards"].numpy(), theirs["rewards"].numpy())
        np.testing.assert_array_equal(ours["masks"].numpy(), theirs["masks"].numpy())


def test_last_state_upweighted_same_offsets_same_goals(tf: Any, original: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The original draws integer offsets in [1, T); ours come from 1 + floor(u (T - 1)): given the offsets
    that u stands for, the goals and rewards agree."""
    rng = np.random.default_rng(2)
    u_goal, u_reached = rng.random(T, np.float32), rng.random(T, np.float32)
    offsets = (1 + np.floor(u_goal * (T - 1))).astype(np.int32)
    with _draws(monkeypatch, tf, "uniform", [offsets, u_reached]):
        theirs = original.last_state_upweighted(_traj(tf), reached_proportion=0.4)
    with _draws(monkeypatch, tf, "stateless_uniform", [u_goal, u_reached]):
        ours = transforms.add_goals(_traj(tf), tf.constant([0, 0], tf.int64), "last_state_upweighted", 0.4)
    np.testing.assert_array_equal(_goal_index(ours), _goal_index(theirs))
    np.testing.assert_array_equal(ours["rewards"].numpy(), theirs["rewards"].numpy())


@pytest.mark.parametrize("goal_delta", [(0, 3), (1, 4), (2, 30)])
def test_delta_goals_same_draws_same_goals(tf: Any, original: Any, monkeypatch: pytest.MonkeyPatch,
                                           goal_delta: tuple[int, int]) -> None:
    u = np.random.default_rng(3).random(T - goal_delta[0], np.float32)
    with _draws(monkeypatch, tf, "uniform", [u]):
        theirs = original.delta_goals(_traj(tf), goal_delta=list(goal_delta))
    with _draws(monkeypatch, tf, "stateless_uniform", [u]):
        ours = transforms.add_goals(_traj(tf), tf.constant([0, 0], tf.int64), "delta_goals", 0.0,
                                    {"goal_delta": goal_delta})
    goals = np.asarray(ours["goals"]["proprio"])[:, 0].astype(int)  # index among the T + 1 observations
    np.testing.assert_array_equal(goals, np.asarray(theirs["goals"]["proprio"])[:, 0].astype(int))
    np.testing.assert_array_equal(goals - np.arange(len(goals)), theirs["goal_dists"].numpy())
    for key in ("actions", "terminals", "truncates"):  # truncated alike
        np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy())
    np.testing.assert_array_equal(ours["rewards"].numpy(), np.where(goals == np.arange(len(goals)) + 1, 0, -1))


# -- distributions over many draws ----------------------------------------------------------------

def _histogram(tf: Any, relabel: Callable[[Any], dict[str, Any]], n: int = N_DRAWS) -> np.ndarray:
    """[rows, T + 1] frequencies of each row's goal offset over ``n`` relabelings (graph mode via tf.data)."""
    ds = tf.data.Dataset.range(n).map(lambda i: _goal_offsets(tf, relabel(i))).batch(n)
    offsets = next(iter(ds)).numpy()  # [n, rows]
    return np.stack([np.bincount(row, minlength=T + 1)[: T + 1] for row in offsets.T]) / n


def _goal_offsets(tf: Any, traj: dict[str, Any]) -> Any:
    goal = tf.cast(traj["goals"]["proprio"][:, 0], tf.int32)
    return goal - tf.range(tf.shape(goal)[0])  # next_observations: offset + 1; all observations: the offset


def _exact(strategy: str, reached: float, discount: float = 1.0, goal_delta: tuple[int, int] = (0, 1)) -> np.ndarray:
    """The exact distribution of the offsets _goal_offsets reads, row by row."""
    rows = T - goal_delta[0] if strategy == "delta_goals" else T
    p = np.zeros((rows, T + 1))
    for i in range(rows):
        if strategy == "delta_goals":
            lo, hi = i + goal_delta[0], min(T + 1, i + goal_delta[1])
            p[i, lo - i:hi - i] = 1.0 / (hi - lo)
            continue
        if i == T - 1:
            p[i, 1] = 1.0
            continue
        future = np.zeros(T + 1)
        n = T - 1 - i
        if strategy == "uniform":
            future[2:n + 2] = 1.0 / n
        elif strategy == "geometric":
            w = discount ** np.arange(1, n + 1)
            future[2:n + 2] = w / w.sum()
        else:  # last_state_upweighted: offsets 1..T-1 alike, clipped at the last state
            k = np.minimum(np.arange(1, T), n)
            np.add.at(future, k + 1, 1.0 / (T - 1))
        p[i] = (1 - reached) * future
        p[i, 1] += reached
    return p


def _assert_close(name: str, got: np.ndarray, want: np.ndarray, n: int, copies: int) -> None:
    """Within 5 standard errors of ``copies`` independent estimates from ``n`` draws (plus rounding)."""
    tolerance = 5 * np.sqrt(copies * want * (1 - want) / n) + 1e-9
    bad = np.argwhere(np.abs(got - want) > tolerance)
    assert not len(bad), f"{name}: offsets {bad[:5].tolist()} differ: {got[tuple(bad[0])]} vs {want[tuple(bad[0])]}"


CASES: list[tuple[str, dict[str, Any]]] = [
    ("uniform", {"reached_proportion": 0.0}), ("uniform", {"reached_proportion": 0.25}),
    ("last_state_upweighted", {"reached_proportion": 0.1}),
    ("geometric", {"reached_proportion": 0.0, "discount": 0.7}),
    ("geometric", {"reached_proportion": 0.2, "discount": 0.95}),
    ("delta_goals", {"goal_delta": (1, 5)}), ("delta_goals", {"goal_delta": (0, 20)}),
]


@pytest.mark.parametrize(("strategy", "kwargs"), CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_offset_distribution_matches_the_original(tf: Any, original: Any, strategy: str,
                                                  kwargs: dict[str, Any]) -> None:
    tf.random.set_seed(0)
    fn = original.GOAL_RELABELING_FUNCTIONS[strategy]
    theirs = _histogram(tf, lambda i: fn(_traj(tf), **kwargs))
    reached = kwargs.get("reached_proportion", 0.0)
    options = {k: v for k, v in kwargs.items() if k != "reached_proportion"}
    ours = _histogram(tf, lambda i: transforms.add_goals(_traj(tf), tf.stack([tf.constant(7, tf.int64), i]),
                                                         strategy, reached, options))
    exact = _exact(strategy, reached, kwargs.get("discount", 1.0), tuple(kwargs.get("goal_delta", (0, 1))))
    _assert_close("original vs exact", theirs, exact, N_DRAWS, 1)  # the reference itself is what we think
    _assert_close("bdv2 vs exact", ours, exact, N_DRAWS, 1)
    _assert_close("bdv2 vs original", ours, theirs, N_DRAWS, 2)
    row_mean = (np.arange(T + 1) * ours).sum(1), (np.arange(T + 1) * theirs).sum(1)
    np.testing.assert_allclose(*row_mean, atol=5 * np.sqrt(2 * 10.0 / N_DRAWS))  # offset variance < 10 here


def test_geometric_with_discount_one_is_uniform(tf: Any) -> None:
    u = tf.constant(np.random.default_rng(4).random(T, np.float32))
    np.testing.assert_array_equal(transforms.goal_indices(GoalRelabeling.GEOMETRIC, u, 1.0).numpy(),
                                  transforms.goal_indices(GoalRelabeling.UNIFORM, u).numpy())


def test_short_trajectory_gives_no_delta_goal_steps(tf: Any) -> None:
    out = transforms.add_goals(_traj(tf, 3), tf.constant([0, 0], tf.int64), "delta_goals", 0.0, {"goal_delta": (5, 9)})
    assert out["actions"].shape[0] == 0 and out["goals"]["image"].shape[0] == 0


def test_missing_option_is_a_clear_error(tf: Any) -> None:
    with pytest.raises(ValueError, match="discount"):
        transforms.add_goals(_traj(tf), tf.constant([0, 0], tf.int64), "geometric", 0.0)


# -- settings -------------------------------------------------------------------------------------

def _settings(**over: Any) -> Settings:
    return build_settings({"data_root": "/d", "save_dir": "/s", **over}, "m.yaml", "global")


def test_settings_accept_the_originals_spelling() -> None:
    s = _settings(goal_relabeling="geometric", goal_relabeling_kwargs={"discount": 0.9, "reached_proportion": 0.1})
    assert s.goal_relabeling_kwargs == {"discount": 0.9} and s.reached_proportion == 0.1
    d = _settings(goal_relabeling="delta_goals", goal_relabeling_kwargs={"goal_delta": [1, 8]})
    assert d.goal_relabeling_kwargs == {"goal_delta": (1, 8)}
    assert _settings().goal_relabeling_kwargs == {}
    import dataclasses
    import json

    again = build_settings(json.loads(json.dumps(dataclasses.asdict(d))), "run.json", "settings")  # run.json
    assert again == d


@pytest.mark.parametrize(("over", "key", "message"), [
    ({"goal_relabeling": "geometric"}, "global.goal_relabeling_kwargs.discount", "missing"),
    ({"goal_relabeling": "geometric", "goal_relabeling_kwargs": {"discount": 1.5}},
     "global.goal_relabeling_kwargs.discount", r"\(0, 1\]"),
    ({"goal_relabeling_kwargs": {"discount": 0.9}}, "global.goal_relabeling_kwargs.discount", "not an argument"),
    ({"goal_relabeling_kwargs": [1]}, "global.goal_relabeling_kwargs", "mapping"),
    ({"goal_relabeling": "delta_goals", "goal_relabeling_kwargs": {"goal_delta": [3, 3]}},
     "global.goal_relabeling_kwargs.goal_delta", "low < high"),
    ({"goal_relabeling": "delta_goals", "goal_relabeling_kwargs": {"goal_delta": [1, "x"]}},
     "global.goal_relabeling_kwargs.goal_delta", "expected"),
    ({"goal_relabeling": "delta_goals", "goal_relabeling_kwargs": {"goal_delta": [0, 4]}, "reached_proportion": 0.1},
     "global.reached_proportion", "delta_goals"),
    ({"reached_proportion": 0.2, "goal_relabeling_kwargs": {"reached_proportion": 0.1}},
     "global.goal_relabeling_kwargs.reached_proportion", "disagrees"),
])
def test_settings_errors_name_the_key(over: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        _settings(**over)
    assert key in str(e.value)


def test_the_originals_flag_names_work_in_config_overrides() -> None:
    from bdv2.trainer import config

    run = {"algo": "gc_bc", "task": "t", "config_overrides": {
        "config.dataset_kwargs.goal_relabeling_strategy": "geometric",
        "config.dataset_kwargs.goal_relabeling_kwargs": {"discount": 0.9, "reached_proportion": 0.1}}}
    exp = config.expand({"global": {"data_root": "/d", "save_dir": "/s"}, "runs": [run]}, "m.yaml", devices=1,
                        resolve=lambda *a: model.Task("t", (), "/d/metadata.json"))
    s = exp.runs[0].settings
    assert (s.goal_relabeling, s.goal_relabeling_kwargs, s.reached_proportion) == ("geometric", {"discount": 0.9}, 0.1)
