"""The action contract: what one action of a dataset (or a policy trained on it) means, inferred from the data.

BridgeData actions are 7 numbers: a Cartesian translation delta, a roll-pitch-yaw delta and the gripper. What is
not written anywhere on disk, and what breaks a policy silently when two sides disagree, is

    frame      the deltas are in the state's own frame ("base": action ~ state[t+1+k] - state[t+k]) or in the
               end effector's frame ("end_effector": the same delta rotated into the gripper's axes);
    units      metres and radians per step (scale ~ 1 against the state's change), or another scale (e.g.
               normalised actions, a scale of ~ 1/std);
    latency    k, the number of steps between an action and the state change it best explains;
    gripper    its range ([0, 1] or [-1, 1]), whether it is binary, and its polarity against the measured
               gripper opening (BridgeData's state gripper is 0 closed ... 1 open, so "open_high" means
               a larger action opens the gripper).

`infer_contract` fits these by least squares of action[t] on the state change state[t+k+1] - state[t+k]
(k = 0..MAX_LATENCY) per axis group. The result is a small dict, stored under ``action_contract`` in the
metadata `bdv2 data stats` writes (and so in every run's config snapshot); `compare` says where two contracts
disagree, in sentences that show both sides. numpy only: the trainer, the doctor and a server can read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

KEY = "action_contract"
"""The key under which metadata files and run snapshots hold the contract."""
MAX_LATENCY = 3
"""Offsets k = 0..MAX_LATENCY steps are tried."""
MIN_R2 = 0.2
"""Below this fit, the frame and latency are reported as "unknown" (the actions do not explain the states)."""
MIN_PAIRS = 8
"""Fewest transitions the offsets are compared on; with less, fewer offsets are tried."""
SCALE_TOLERANCE = 0.5
"""A fitted scale within 1 +- this is "the state's units per step"."""
GRIPPER = 6


@dataclass(frozen=True)
class Gripper:
    low: float
    high: float
    range: str
    """"[0, 1]", "[-1, 1]" or "[low, high]" as observed."""
    binary: bool
    polarity: str
    """"open_high", "open_low" or "unknown" (against the state's gripper opening)."""


@dataclass(frozen=True)
class ActionContract:
    frame: str
    """"base", "end_effector" or "unknown"."""
    units: str
    """"m, rad per step" when the fitted scale is ~1, else "state units x <scale> per step"."""
    scale: float
    """Least-squares slope of the translation actions against the state's translation change."""
    latency: int
    """Steps k between action t and the state change it explains best (state[t+k+1] - state[t+k])."""
    gripper: Gripper
    actions: str = "raw"
    """Which actions were fitted: "raw" (as recorded) or "relabeled" (the trainer's reached-state deltas)."""
    fit: dict[str, float] = field(default_factory=dict)
    """R^2 of the chosen fit per axis group ("translation", "rotation"), "steps" (transitions used) and
    "latency_margin" (how much better the chosen offset explains the steps than the next best: small is a weak
    verdict)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionContract:
        """Raises: ValueError naming the missing or malformed field."""
        try:
            g = d["gripper"]
            return cls(str(d["frame"]), str(d["units"]), float(d["scale"]), int(d["latency"]),
                       Gripper(float(g["low"]), float(g["high"]), str(g["range"]), bool(g["binary"]),
                               str(g["polarity"])),
                       str(d.get("actions", "raw")), {k: float(v) for k, v in d.get("fit", {}).items()})
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{KEY}: malformed ({type(e).__name__}: {e})") from None


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles to (-pi, pi]: a yaw going from 3.1 to -3.1 is a step of 0.08, not -6.2."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _rotation(rpy: np.ndarray) -> np.ndarray:
    """[N, 3] roll-pitch-yaw (extrinsic xyz) -> [N, 3, 3] rotation matrices R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = rpy[:, 0], rpy[:, 1], rpy[:, 2]
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.stack([
        np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], -1),
        np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], -1),
        np.stack([-sp, cp * sr, cp * cr], -1),
    ], -2)


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope through the origin of y on x (all axes share it) and R^2 of that fit."""
    xx = float(np.sum(x * x))
    if xx <= 0 or not len(y):
        return 0.0, 0.0
    slope = float(np.sum(x * y)) / xx
    total = float(np.sum((y - y.mean(0)) ** 2))
    if total <= 0:
        return slope, 0.0
    return slope, 1.0 - float(np.sum((y - slope * x) ** 2)) / total


def _pairs(episodes: Iterable[tuple[np.ndarray, np.ndarray]], k: int, frame: str, horizon: int | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stacked (state change, action) rows over all episodes for offset k: translation [M, 3] x2, rotation x2.

    Action t pairs with state[t+k+1] - state[t+k], so t runs while t + horizon + 1 <= N - 1 (horizon k by
    default; MAX_LATENCY to compare offsets on the same steps).
    """
    horizon = k if horizon is None else horizon
    dp, ap, dr, ar = [], [], [], []
    for state, actions in episodes:
        t = min(len(actions), len(state) - 1 - horizon)
        if t <= 0:
            continue
        delta = state[k + 1:k + 1 + t, :3] - state[k:k + t, :3]  # [t, 3]
        if frame == "end_effector":  # the base-frame change expressed in the gripper's axes at step t + k
            delta = np.einsum("nji,nj->ni", _rotation(state[k:k + t, 3:6]), delta)
        dp.append(delta)
        ap.append(actions[:t, :3])
        dr.append(_wrap(state[k + 1:k + 1 + t, 3:6] - state[k:k + t, 3:6]))
        ar.append(actions[:t, 3:6])
    if not dp:
        empty = np.zeros((0, 3))
        return empty, empty, empty, empty
    return np.concatenate(dp), np.concatenate(ap), np.concatenate(dr), np.concatenate(ar)


def _gripper(episodes: Sequence[tuple[np.ndarray, np.ndarray]], latency: int) -> Gripper:
    acts = np.concatenate([a[:, GRIPPER] for _, a in episodes]) if episodes else np.zeros(0)
    acts = acts[np.isfinite(acts)]
    if not len(acts):
        return Gripper(0.0, 0.0, "unknown", False, "unknown")
    low, high = float(acts.min()), float(acts.max())
    if low >= -0.05 and high <= 1.05:
        name = "[0, 1]"
    elif low >= -1.05 and high <= 1.05 and low < -0.5:
        name = "[-1, 1]"
    else:
        name = f"[{low:.3g}, {high:.3g}]"
    binary = bool(np.all(np.minimum(np.abs(acts - low), np.abs(acts - high)) < 1e-3))
    # Polarity: does a high gripper action go with a wider measured opening a few steps later?
    xs, ys = [], []
    for state, actions in episodes:
        t = min(len(actions), len(state) - 1 - latency)
        if t > 0:
            xs.append(actions[:t, GRIPPER])
            ys.append(state[latency + 1:latency + 1 + t, GRIPPER])
    polarity = "unknown"
    if xs:
        x, y = np.concatenate(xs), np.concatenate(ys)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if len(x) > 2 and x.std() > 0 and y.std() > 0:
            corr = float(np.corrcoef(x, y)[0, 1])
            if abs(corr) >= 0.3:
                polarity = "open_high" if corr > 0 else "open_low"
    return Gripper(round(low, 4), round(high, 4), name, binary, polarity)


def infer_contract(episodes: Sequence[tuple[np.ndarray, np.ndarray]], actions: str = "raw") -> ActionContract:
    """Fit the contract from (state [N, 7], actions [T, 7]) pairs, T <= N - 1, action t taken at state t.

    Non-finite rows are dropped. With too little motion to fit, frame and latency are "unknown" / 0.
    """
    clean = []
    for state, act in episodes:
        state, act = np.asarray(state, np.float64), np.asarray(act, np.float64)
        if state.ndim == 2 and act.ndim == 2 and state.shape[1] >= 7 and act.shape[1] >= 7 and len(act):
            clean.append((np.nan_to_num(state, posinf=0.0, neginf=0.0),
                          np.nan_to_num(act, posinf=0.0, neginf=0.0)))
    # Choose frame and offset on the same steps for every candidate (those all offsets can use), so a larger k
    # is not favoured or penalised by fitting fewer, later steps; then fit the choice on every step it can use.
    # Short episodes cannot spare MAX_LATENCY steps: try fewer offsets rather than none.
    max_k = next((m for m in range(MAX_LATENCY, 0, -1) if len(_pairs(clean, 0, "base", m)[0]) >= MIN_PAIRS), 0)
    scores: dict[tuple[str, int], float] = {}
    for frame in ("base", "end_effector"):
        for k in range(max_k + 1):
            dp, ap, _, _ = _pairs(clean, k, frame, max_k)
            scores[frame, k] = _fit(dp, ap)[1]
    # Base first: on a tie (e.g. a straight-down arm where both frames agree) the simpler frame wins.
    frame, k = max(scores, key=lambda fk: (round(scores[fk], 6), fk[0] == "base"))
    dp, ap, dr, ar = _pairs(clean, k, frame)
    slope, r2 = _fit(dp, ap)
    _, r2_rot = _fit(dr, ar)
    steps = len(dp)
    if not any(np.isfinite(v) for v in scores.values()) or scores[frame, k] < MIN_R2:
        frame, k = "unknown", 0
    others = [max(v, 0.0) for (f, kk), v in scores.items() if f == frame and kk != k]
    margin = scores.get((frame, k), 0.0) - max(others, default=0.0)
    units = "m, rad per step" if abs(slope - 1) <= SCALE_TOLERANCE else f"state units x {slope:.3g} per step"
    return ActionContract(frame, units, round(slope, 4), k, _gripper(clean, k), actions,
                          {"translation": round(max(r2, 0.0), 4), "rotation": round(max(r2_rot, 0.0), 4),
                           "steps": float(steps), "latency_margin": round(max(margin, 0.0), 4)})


def from_statistics(meta: Mapping[str, Any]) -> ActionContract | None:
    """The contract a metadata file carries (``action_contract``); failing that, the gripper range its action
    min/max (or mean/std) imply, with the rest unknown. None when it has neither."""
    if KEY in meta:
        return ActionContract.from_dict(meta[KEY])
    action = meta.get("action", {})
    try:
        if "min" in action and "max" in action:
            low, high = float(action["min"][GRIPPER]), float(action["max"][GRIPPER])
        else:  # published statistics often hold only mean/std: a gripper mean below 0 cannot be in [0, 1]
            mean = float(action["mean"][GRIPPER])
            low, high = (-1.0, 1.0) if mean < -0.05 else (0.0, 1.0)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    name = "[0, 1]" if low >= -0.05 and high <= 1.05 else "[-1, 1]" if low >= -1.05 and high <= 1.05 \
        else f"[{low:.3g}, {high:.3g}]"
    return ActionContract("unknown", "unknown", 0.0, 0, Gripper(low, high, name, False, "unknown"), "unknown")


def compare(ours: ActionContract, theirs: ActionContract, our_name: str, their_name: str) -> list[str]:
    """Sentences naming each disagreement with both sides shown; [] when the two contracts agree.

    A side that does not know a field ("unknown") agrees with anything on it.
    """
    out = []
    if "unknown" not in (ours.gripper.range, theirs.gripper.range) and ours.gripper.range != theirs.gripper.range:
        out.append(f"{our_name}'s gripper is in {ours.gripper.range} and {their_name}'s is in "
                   f"{theirs.gripper.range}")
    if "unknown" not in (ours.gripper.polarity, theirs.gripper.polarity) \
            and ours.gripper.polarity != theirs.gripper.polarity:
        out.append(f"{our_name}'s gripper opens with {_polarity(ours)} values and {their_name}'s with "
                   f"{_polarity(theirs)} values")
    if "unknown" not in (ours.frame, theirs.frame) and ours.frame != theirs.frame:
        out.append(f"{our_name}'s deltas are in the {ours.frame} frame and {their_name}'s in the "
                   f"{theirs.frame} frame")
    if ours.scale and theirs.scale and "unknown" not in (ours.units, theirs.units):
        ratio = ours.scale / theirs.scale
        if not 0.5 <= ratio <= 2.0:
            out.append(f"{our_name}'s actions are {ours.units} (scale {ours.scale:.3g}) and {their_name}'s are "
                       f"{theirs.units} (scale {theirs.scale:.3g}): {ratio:.3g}x apart")
    if "unknown" not in (ours.frame, theirs.frame) and ours.latency != theirs.latency:
        out.append(f"{our_name}'s actions are reached after {ours.latency} step(s) and {their_name}'s after "
                   f"{theirs.latency}")
    return out


def _polarity(c: ActionContract) -> str:
    return "high" if c.gripper.polarity == "open_high" else "low"


def check_actions(contract: ActionContract, actions: np.ndarray, tolerance: float = 0.25) -> list[str]:
    """What is wrong with actions [..., 7] that claim to follow `contract` (e.g. a policy's un-normalised
    output): a gripper outside the contract's range by more than `tolerance`, non-finite values."""
    a = np.asarray(actions, np.float64).reshape(-1, np.shape(actions)[-1])
    out = []
    if not np.all(np.isfinite(a)):
        out.append("actions hold NaN or inf")
    grip = a[:, GRIPPER][np.isfinite(a[:, GRIPPER])]
    g = contract.gripper
    if len(grip) and g.range != "unknown" and (grip.min() < g.low - tolerance or grip.max() > g.high + tolerance):
        out.append(f"the actions' gripper is in [{grip.min():.3g}, {grip.max():.3g}] and the contract's is in "
                   f"{g.range}")
    return out
