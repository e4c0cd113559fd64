"""The built-in sample (data_tools/sample.py) is deterministic and its actions follow from the scene: the
relabelled actions (state deltas, as the trainer's relabel_actions) point at the object named in lang.txt,
the gripper closes there, and the images show the end effector where the state says it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bdv2.data_tools import sample
from bdv2.data_tools.raw import load_pickle, read_language

from . import helpers


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.write_sample(tmp_path_factory.mktemp("s") / "raw", n_trajectories=4, n_frames=20, n_cameras=1)


def test_same_seed_same_bytes_other_seed_other_scenes(small: Path, tmp_path: Path) -> None:
    again = sample.write_sample(tmp_path / "again", n_trajectories=4, n_frames=20, n_cameras=1)
    assert _files(again) == _files(small)
    other = sample.write_sample(tmp_path / "other", n_trajectories=3, n_frames=20, n_cameras=1, seed=1)
    path = "obs_dict.pkl"
    assert not np.array_equal(load_pickle(helpers.traj(small) / path)["full_state"],
                              load_pickle(helpers.traj(other) / path)["full_state"])


@pytest.mark.parametrize("index", range(4))
def test_put_actions_head_for_the_named_object_then_the_pot(small: Path, index: int) -> None:
    traj = helpers.traj(small, "put_carrot_in_pot", index)
    (instruction,) = read_language(traj)
    task = sample.TASKS[0]
    (home,) = [np.array(h) for name, _, h in task.targets if instruction == f"put the {name} in the pot"]
    state = load_pickle(traj / "obs_dict.pkl")["full_state"]  # [T + 1, 7]
    delta = state[1:, :3] - state[:-1, :3]  # the relabelled xyz actions
    closes = int(np.argmax(state[:, 6] < 0.5))  # first observation with the gripper closed
    grasp = state[closes, :2]
    assert closes > 0 and np.abs(grasp - home).max() <= sample.JITTER + 1e-9  # at the named object
    first = delta[0, :2] / np.linalg.norm(delta[0, :2])
    assert first @ ((grasp - state[0, :2]) / np.linalg.norm(grasp - state[0, :2])) > 0.999  # straight there
    assert np.allclose(delta[closes - 1], 0)  # a still step to close
    pot = np.array(sample.DEST_HOMES[0])
    carry = delta[closes, :2] / np.linalg.norm(delta[closes, :2])
    to_pot = (pot - state[closes, :2]) / np.linalg.norm(pot - state[closes, :2])
    assert carry @ to_pot > 0.98  # then straight at the pot
    if (state[closes:, 6] > 0.5).any():  # and, once there, the gripper opens
        opens = closes + int(np.argmax(state[closes:, 6] > 0.5))
        assert np.linalg.norm(state[opens, :2] - pot) < sample.JITTER * 1.5


def test_targets_cycle_and_instructions_name_them(small: Path) -> None:
    names = [read_language(helpers.traj(small, "put_carrot_in_pot", i))[0] for i in range(4)]
    assert set(names) == {f"put the {n} in the pot" for n, _, _ in sample.TASKS[0].targets}
    assert read_language(helpers.traj(small, "open_drawer", 0)) == ["open the drawer", "pull the drawer open"]


def test_images_show_the_effector_where_the_state_says(small: Path) -> None:
    traj = helpers.traj(small, "sweep_beans", 1)
    state = load_pickle(traj / "obs_dict.pkl")["full_state"]
    cam = sample.Camera(0)
    for t in (0, len(state) - 1):
        frame = np.asarray(Image.open(traj / "images0" / f"im_{t}.jpg"))
        half = sample.effector_half(state[t, 2])
        col, row = cam.px(state[t, :2] + np.array([0.6 * half, 0.0]))  # the palm of the drawn effector
        assert frame[int(row), int(col)].max() < 70, (t, frame[int(row), int(col)])
