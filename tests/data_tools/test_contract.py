"""The action contract fitted from states and actions: frame, scale, latency and gripper come out as built into
synthetic episodes; mismatches are sentences with both sides."""

from __future__ import annotations

import numpy as np
import pytest

from bdv2.data_tools import contract
from bdv2.data_tools.contract import ActionContract, compare, from_statistics, infer_contract

from .helpers import RldsSample


def _episodes(frame: str = "base", scale: float = 1.0, latency: int = 0, gripper: tuple[float, float] = (0.0, 1.0),
              n: int = 12, steps: int = 30) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random walks whose state change k = latency steps after action t is the action (scaled, in `frame`)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        delta = rng.normal(0, 0.01, size=(steps + latency, 3))
        rot = rng.normal(0, 0.02, size=(steps + latency, 3))
        state = np.zeros((steps + latency + 1, 7))
        state[0, :3] = [0.3, 0.0, 0.1]
        state[0, 3:6] = rng.uniform(-1.0, 1.0, 3)
        opening = (np.arange(steps + latency) // 8 % 2).astype(float)  # open/closed in blocks of 8 steps
        for t in range(steps + latency):
            state[t + 1, :3] = state[t, :3] + delta[t]
            state[t + 1, 3:6] = state[t, 3:6] + rot[t]
            state[t + 1, 6] = opening[t]
        actions = np.zeros((steps, 7))
        for t in range(steps):
            d = delta[t + latency]
            if frame == "end_effector":
                d = contract._rotation(state[t + latency:t + latency + 1, 3:6])[0].T @ d
            actions[t, :3] = scale * d
            actions[t, 3:6] = scale * rot[t + latency]
            actions[t, 6] = gripper[0] + (gripper[1] - gripper[0]) * opening[t + latency]
        out.append((state[:steps + 1], actions))
    return out


@pytest.mark.parametrize(("frame", "latency"), [("base", 0), ("base", 2), ("end_effector", 0), ("end_effector", 1)])
def test_frame_and_latency(frame: str, latency: int) -> None:
    c = infer_contract(_episodes(frame=frame, latency=latency))
    assert (c.frame, c.latency) == (frame, latency)
    assert c.units == "m, rad per step" and c.scale == pytest.approx(1.0, abs=0.01)
    assert c.fit["translation"] > 0.99


def test_scale_of_normalised_actions() -> None:
    c = infer_contract(_episodes(scale=55.0))
    assert c.scale == pytest.approx(55.0, rel=0.01) and c.units == "state units x 55 per step"


def test_gripper_range_and_polarity() -> None:
    c = infer_contract(_episodes(gripper=(-1.0, 1.0)))
    assert (c.gripper.range, c.gripper.binary, c.gripper.polarity) == ("[-1, 1]", True, "open_high")
    flipped = infer_contract(_episodes(gripper=(1.0, 0.0)))
    assert (flipped.gripper.range, flipped.gripper.polarity) == ("[0, 1]", "open_low")


def test_compare_shows_both_sides() -> None:
    policy = infer_contract(_episodes())
    data = infer_contract(_episodes(gripper=(-1.0, 1.0), scale=55.0, frame="end_effector"))
    diffs = compare(policy, data, "the policy", "this data")
    assert diffs[0] == "the policy's gripper is in [0, 1] and this data's is in [-1, 1]"
    assert any("base frame and this data's in the end_effector frame" in d for d in diffs)
    assert any("scale 1) and this data's are state units x 55 per step (scale 55): 0.0182x apart" in d for d in diffs)
    assert compare(policy, infer_contract(_episodes()), "a", "b") == []


def test_round_trip_and_statistics() -> None:
    c = infer_contract(_episodes())
    assert ActionContract.from_dict(c.to_dict()) == c
    assert from_statistics({contract.KEY: c.to_dict()}) == c
    old = from_statistics({"action": {"mean": [0.0] * 7, "std": [1.0] * 7, "min": [0.0] * 6 + [-1.0],
                                      "max": [1.0] * 7}})
    assert old is not None and old.gripper.range == "[-1, 1]" and old.frame == "unknown"
    with pytest.raises(ValueError, match="action_contract: malformed"):
        ActionContract.from_dict({"frame": "base"})


def test_check_actions() -> None:
    c = infer_contract(_episodes())
    assert contract.check_actions(c, np.array([[0.01] * 6 + [0.9]])) == []
    assert contract.check_actions(c, np.array([[0.01] * 6 + [-1.0]])) == [
        "the actions' gripper is in [-1, -1] and the contract's is in [0, 1]"]


def test_real_excerpt_raw_actions(real_rlds_sample: RldsSample) -> None:
    """Measured on the 50 real episodes: the recorded actions are base-frame deltas in metres and radians,
    reached within the same step, with a [0, 1] gripper that opens with high values."""
    from bdv2.data_tools.summary import compute_stats

    c = compute_stats(real_rlds_sample.path, relabel=False)[contract.KEY]
    assert (c["frame"], c["units"], c["latency"], c["actions"]) == ("base", "m, rad per step", 0, "raw")
    assert 0.8 < c["scale"] < 1.1 and c["fit"]["translation"] > 0.6
    assert (c["gripper"]["range"], c["gripper"]["polarity"]) == ("[0, 1]", "open_high")
