"""Executing action chunks: receding horizon and temporal ensembling, by hand and through load_policy."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from bdv2.trainer.execute import ACT_EXP_WEIGHT, Ensemble, ExecuteError, Receding, parse_execute
from bdv2.trainer.policy import load_policy

from .test_policy import _obs, written_run


def chunk(j: int, k: int = 3) -> np.ndarray:
    """Chunk j: its i-th action is 10 * j + i in every dimension, so each value says where it came from."""
    return np.stack([np.full(7, 10.0 * j + i, np.float32) for i in range(k)])  # [k, 7]


def run(executor: Receding | Ensemble, steps: int) -> tuple[list[float], list[bool]]:
    """Drive an executor as the policy does; return the first dimension of each action and the re-plans."""
    out, plans, j = [], [], 0
    for _ in range(steps):
        plan = executor.needs_plan()
        if plan:
            executor.push(chunk(j))
            j += 1
        plans.append(plan)
        out.append(float(executor.next()[0]))
    return out, plans


def test_receding_executes_n_then_replans() -> None:
    out, plans = run(Receding(2), 5)
    assert out == [0, 1, 10, 11, 20] and plans == [True, False, True, False, True]
    out, plans = run(Receding(3), 4)  # "all" for k = 3
    assert out == [0, 1, 2, 10] and plans == [True, False, False, True]


def test_ensemble_weights_oldest_first_by_hand() -> None:
    ex = Ensemble(3, m=0.5)
    out, plans = run(ex, 4)
    assert all(plans)
    e1, e2 = math.exp(-0.5), math.exp(-1.0)
    expected = [
        0.0,                                           # step 0: chunk 0's action 0 alone
        (1 * 1 + e1 * 10) / (1 + e1),                  # step 1: chunk 0's action 1 (oldest, weight 1), chunk 1's 0
        (1 * 2 + e1 * 11 + e2 * 20) / (1 + e1 + e2),   # step 2: chunks 0, 1, 2 at their actions 2, 1, 0
        (1 * 12 + e1 * 21 + e2 * 30) / (1 + e1 + e2),  # step 3: chunk 0 left the window of w = 3
    ]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(ex.weights(), np.array([1, e1, e2]) / (1 + e1 + e2))
    ex.reset()
    assert run(ex, 1)[0] == [0.0]


def test_ensemble_window_and_batches() -> None:
    ex = Ensemble(2, m=0.0)  # octo's default: the plain mean
    out, _ = run(ex, 3)
    assert out == [0.0, (1 + 10) / 2, (11 + 20) / 2]
    batched = Ensemble(2, m=0.0)
    for j in range(2):
        batched.push(np.stack([chunk(j), chunk(j) + 100]))  # [B=2, k, 7]
    assert batched.next().shape == (2, 7)
    np.testing.assert_allclose(batched.next()[:, 0], [(1 + 10) / 2, (101 + 110) / 2])


@pytest.mark.parametrize(("spec", "kind", "arg"), [
    ("all", Receding, 3), ("receding:1", Receding, 1), ("receding:3", Receding, 3), ("ensemble:2", Ensemble, 2),
])
def test_parse(spec: str, kind: type, arg: int) -> None:
    ex = parse_execute(spec, 3)
    assert isinstance(ex, kind) and (ex.n if isinstance(ex, Receding) else ex.w) == arg
    if isinstance(ex, Ensemble):
        assert ex.m == ACT_EXP_WEIGHT


def test_parse_ensemble_weight() -> None:
    ex = parse_execute("ensemble:3:0.1", 3)
    assert isinstance(ex, Ensemble) and ex.m == 0.1


@pytest.mark.parametrize(("spec", "message"), [
    ("receding:4", "1..3"), ("receding:0", "1..3"), ("ensemble:5", "1..3"), ("receding:x", "invalid literal"),
    ("fancy", "expected 'all'"), ("receding", "expected"), ("ensemble:2:nan", "finite"),
])
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(ExecuteError, match=re.escape(message)):
        parse_execute(spec, 3)


def test_load_policy_executes_chunks(tmp_path: Path) -> None:
    path = written_run(tmp_path, "gc_bc", act_pred_horizon=3)
    raw = load_policy(path)
    goal = {"image": _obs()["image"]}
    obs = [_obs(seed=s) for s in range(4)]
    chunks = [raw.act(o, goal) for o in obs]  # [3, 7] each
    assert chunks[0].shape == (3, 7)

    receding = load_policy(path, execute="receding:2")
    got, plans = [], []
    for o in obs:
        got.append(receding.act(o, goal))
        plans.append(receding.replanned)
    assert got[0].shape == (7,) and plans == [True, False, True, False]
    want = [chunks[0][0], chunks[0][1], chunks[2][0], chunks[2][1]]
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=1e-6)

    ensemble = load_policy(path, execute="ensemble:3:0.5")
    out = [ensemble.act(o, goal) for o in obs[:3]]
    e1, e2 = math.exp(-0.5), math.exp(-1.0)
    want2 = (chunks[0][2] + e1 * chunks[1][1] + e2 * chunks[2][0]) / (1 + e1 + e2)
    np.testing.assert_allclose(out[2], want2, atol=1e-6)

    # reset() forgets the chunks; episode() starts a stream of its own that shares the compiled function.
    ensemble.reset()
    np.testing.assert_allclose(ensemble.act(obs[3], goal), chunks[3][0], atol=1e-6)
    other = ensemble.episode()
    np.testing.assert_allclose(other.act(obs[1], goal), chunks[1][0], atol=1e-6)
    assert other._forward is ensemble._forward


def test_load_policy_refuses_a_bad_strategy_before_restoring(tmp_path: Path) -> None:
    path = written_run(tmp_path, "bc")
    with pytest.raises(ExecuteError, match=re.escape("n must be 1..1")):
        load_policy(path, execute="receding:2")
    one = load_policy(path, execute="all")  # a run without chunks: one action per call, every call plans
    assert one.act(_obs()).shape == (7,) and one.replanned
