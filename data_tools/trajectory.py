"""What a trajectory means as training data, written once for the converters, the statistics and the trainer.

- `transitions`: T + 1 observations and T actions -> the schema's time-major features: observation t is
  step t, next observation t is step t + 1, terminals all False (as the original, which ignores out.npy's
  terminals), truncates True at the last transition only. The raw, numpy and RLDS converters
  (schema.make_arrays, numpy) and the trainer's in-place RLDS reader (rlds.episode_dataset, inside tf.data)
  call it, with numpy or tf.experimental.numpy as ``xp``.
- `relabel_actions`: the default action relabeling (reached-state deltas for xyz/rpy, the gripper
  binarised at GRIPPER_OPEN / GRIPPER_CLOSED), in numpy for `bdv2 data stats`. The trainer's TensorFlow form
  (trainer/transforms.py) reads the same thresholds, and tests/data_tools/test_parity.py feeds both the
  same trajectories.

After the original's BridgeDataset (https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/bridge_dataset.py:
_process_actions, _binarize_gripper_actions).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

GRIPPER_OPEN = 0.95
"""A gripper command above this is "open" (1)."""
GRIPPER_CLOSED = 0.05
"""A gripper command below this is "closed" (0); in between takes the state of the next settled step."""


def transitions(frames: Any, state: Any, actions: Any, length: Any, xp: ModuleType = np) -> dict[str, Any]:
    """The time-major schema features of one trajectory of ``length`` = T transitions, from its T + 1 frames
    and states and its T actions. Only slicing and ``xp.zeros/ones/concatenate``, so numpy arrays and tf
    tensors (``xp``: tf.experimental.numpy, ``length`` a scalar tensor) take the same rule."""
    return {
        "observations/images0": frames[:-1],
        "observations/state": state[:-1],
        "next_observations/images0": frames[1:],
        "next_observations/state": state[1:],
        "actions": actions,
        "terminals": xp.zeros([length], dtype=bool),
        "truncates": xp.concatenate([xp.zeros([length - 1], dtype=bool), xp.ones([1], dtype=bool)]),
    }


def binarize_gripper(raw: np.ndarray) -> np.ndarray:
    """[T] gripper commands -> {0, 1}: scanning backwards, an in-between value (GRIPPER_CLOSED..GRIPPER_OPEN)
    takes the state of the next open/closed step; a trailing in-between run keeps the raw last value (as the
    original)."""
    out = np.array(raw, dtype=np.float64)
    carry = out[-1]
    for t in range(len(out) - 1, -1, -1):
        if out[t] > GRIPPER_OPEN or out[t] < GRIPPER_CLOSED:
            carry = 1.0 if out[t] > GRIPPER_OPEN else 0.0
        out[t] = carry
    return out


def relabel_actions(state: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The trainer's default relabeling of T actions from T + 1 states: reached-state deltas for xyz/rpy,
    binarised gripper."""
    out = np.array(actions, dtype=np.float64)
    out[:, :6] = state[1:, :6] - state[:-1, :6]  # [T, 6]
    out[:, 6] = binarize_gripper(out[:, 6])
    return out
