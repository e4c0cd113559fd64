"""One decision, two implementations: where the data room decides something in two places (numpy for
statistics and conversion, TensorFlow for training), the two must agree. And where inspect and the converters
judge the same raw trajectory, they use one rule (raw.align_lengths) and must agree at its boundaries."""

from __future__ import annotations

import importlib.util
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bdv2.data_tools import convert, rlds
from bdv2.data_tools.progress import Skipped
from bdv2.data_tools.sample import write_sample
from bdv2.data_tools.summary import inspect_tree
from bdv2.data_tools.trajectory import relabel_actions, transitions

from .helpers import RldsSample, traj

# ------------------------------------------------------------------------------------------ raw length rule


def _pickle(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj))


def _unpickle(path: Path) -> Any:
    return pickle.loads(path.read_bytes())  # files this test wrote


def _edit_obs(t: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    obs = _unpickle(t / "obs_dict.pkl")
    edit(obs)
    _pickle(t / "obs_dict.pkl", obs)


def _keep_frames(t: Path, n: int, n_actions: int) -> None:
    """Cut every camera to n frames and policy_out.pkl to n_actions entries (obs_dict.pkl keeps its rows)."""
    for cam in ("images0", "images1"):
        for f in (t / cam).glob("im_*.jpg"):
            if int(f.stem[3:]) >= n:
                f.unlink()
    _pickle(t / "policy_out.pkl", _unpickle(t / "policy_out.pkl")[:n_actions])


def _longer_camera(t: Path) -> None:
    shutil.copyfile(t / "images1" / "im_0.jpg", t / "images1" / "im_4.jpg")


def _extra_state(t: Path) -> None:
    def add(obs: dict[str, Any]) -> None:
        obs["full_state"] = np.concatenate([obs["full_state"], obs["full_state"][-1:]])
        obs["time_stamp"] = [*obs["time_stamp"], obs["time_stamp"][-1] + 0.2]
    _edit_obs(t, add)


def _short_camera(t: Path) -> None:
    (t / "images1" / "im_3.jpg").unlink()


def _short_time_stamps(t: Path) -> None:
    _edit_obs(t, lambda obs: obs.update(time_stamp=obs["time_stamp"][:-1]))


# (task, trajectory, edit, converted?) at the edges of the rule; 4 frames per trajectory before the edit.
BOUNDARY: list[tuple[str, int, Callable[[Path], None], bool]] = [
    ("put_carrot_in_pot", 0, _longer_camera, True),  # a camera with more frames than images0: extra ignored
    ("put_carrot_in_pot", 1, _extra_state, True),  # more states than frames: the shortest decides
    ("put_carrot_in_pot", 2, _short_camera, False),  # a camera with fewer frames than images0
    ("open_drawer", 0, _short_time_stamps, False),  # 3 observations for 3 actions: one too few
    ("open_drawer", 1, lambda t: _keep_frames(t, 2, 1), True),  # the shortest trajectory: 2 frames, T = 1
    ("sweep_beans", 0, lambda t: _keep_frames(t, 2, 1), False),  # latency shift: 2 frames give T = 0
    ("sweep_beans", 1, lambda t: _keep_frames(t, 3, 2), True),  # latency shift: 3 frames and 2 actions, T = 1
]


@pytest.fixture(scope="module")
def boundary_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_sample(tmp_path_factory.mktemp("boundary") / "raw", n_trajectories=6, n_frames=4, n_cameras=2)
    for task, index, edit, _ in BOUNDARY:
        edit(traj(root, task, index))
    return root


def _flagged(problems: list[str], trajs: list[Path]) -> set[str]:
    return {str(t) for t in trajs if any(p.startswith(f"{t}:") for p in problems)}


def test_inspect_flags_exactly_what_the_converters_skip_at_the_length_boundaries(boundary_raw: Path,
                                                                               tmp_path: Path) -> None:
    trajs = [traj(boundary_raw, task, index) for task, index, _, _ in BOUNDARY]
    bad = {str(traj(boundary_raw, task, index)) for task, index, _, ok in BOUNDARY if not ok}
    inspection = inspect_tree(boundary_raw)
    assert _flagged(inspection.problems, trajs) == bad, inspection.problems
    frames = sum(g["frames"] for g in inspection.groups.values())
    trajectories = sum(g["trajectories"] for g in inspection.groups.values())
    assert trajectories == 3 * 6 - len(bad)
    split = {"im_size": 16, "train_proportion": 0.5}  # 3 + 3: no split loses all its trajectories
    reports = [convert.raw_to_numpy(boundary_raw, tmp_path / "np", **split)]
    if importlib.util.find_spec("tensorflow") is not None:  # raw-to-tfrecord needs it; raw-to-numpy does not
        reports.append(convert.raw_to_tfrecord(boundary_raw, tmp_path / "tf", **split))
    for report in reports:
        assert {s.path for s in report.skipped} == bad, report.skipped
        assert not report.dropped
        assert (report.trajectories, report.frames) == (trajectories, frames)


# ------------------------------------------------------------------------------------------ action relabeling


def _random_trajectory(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 states [T + 1, 7] and actions [T, 7] whose gripper mixes open, closed, in-between and the
    thresholds themselves."""
    state = rng.normal(0, 0.3, size=(length + 1, 7)).astype(np.float32)
    actions = rng.normal(0, 0.02, size=(length, 7)).astype(np.float32)
    choices = np.array([0.0, 1.0, 0.05, 0.95, 0.5, 0.049, 0.951, 0.2], np.float32)
    actions[:, 6] = rng.choice(choices, size=length)
    return state, actions


def test_numpy_and_tensorflow_relabeling_agree_on_random_trajectories() -> None:
    tf = pytest.importorskip("tensorflow", reason="the trainer's relabeling is TensorFlow code")
    from bdv2.trainer.transforms import relabel_actions as tf_relabel
    rng = np.random.default_rng(0)
    for length in [1, 2, 3, *rng.integers(4, 40, size=40).tolist()]:
        state, actions = _random_trajectory(rng, length)
        traj_ = {"observations": {"proprio": tf.constant(state[:-1])},
                 "next_observations": {"proprio": tf.constant(state[1:])}, "actions": tf.constant(actions)}
        got_tf = tf_relabel(traj_)["actions"].numpy()
        got_np = relabel_actions(state, actions)
        assert got_tf.dtype == np.float32 and got_tf.shape == got_np.shape == (length, 7)
        np.testing.assert_array_equal(got_np.astype(np.float32), got_tf, err_msg=f"length {length}")


# ------------------------------------------------------------------------------------------ RLDS alignment


def test_transitions_in_numpy_and_inside_tf_data_agree() -> None:
    """trajectory.transitions with numpy (the converters) and with tf.experimental.numpy inside a tf.data map
    (the in-place RLDS reader): the same shift, terminals and truncates."""
    tf = pytest.importorskip("tensorflow")
    import tensorflow.experimental.numpy as tnp

    rng = np.random.default_rng(1)
    for length in (1, 2, 5):
        frames = rng.integers(0, 255, size=(length + 1, 4, 4, 3), dtype=np.uint8)
        state = rng.normal(size=(length + 1, 7)).astype(np.float32)
        actions = rng.normal(size=(length, 7)).astype(np.float32)
        want = transitions(frames, state, actions, length)
        ds = tf.data.Dataset.from_tensors((frames, state, actions)).map(
            lambda f, s, a: transitions(f, s, a, tf.shape(a)[0], tnp))
        [got] = list(ds.as_numpy_iterator())
        assert sorted(got) == sorted(want)
        for key, value in want.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"{key}, length {length}")
        np.testing.assert_array_equal(want["next_observations/state"][:-1], want["observations/state"][1:])
        assert not want["terminals"].any() and want["truncates"].tolist() == [False] * (length - 1) + [True]


def test_rlds_converter_and_episode_dataset_align_identically(generated_rlds: RldsSample) -> None:
    """episode_arrays (numpy, the converter) and episode_dataset (TF, the trainer) on the generated release:
    identical observations, next observations, actions and every other feature; inspect's facts agree too."""
    pytest.importorskip("tensorflow")
    d = rlds.open_dir(generated_rlds.path)
    facts = {f.where: f for f in rlds.iter_facts(generated_rlds.path)}
    for split, shards in d.shards.items():
        converted = []
        for shard in shards:
            for index, ep in enumerate(rlds.iter_shard(d, shard, 0)):
                arrays = rlds.episode_arrays(ep, d, 0, shard, index)
                assert not isinstance(arrays, Skipped)
                converted.append(arrays)
                fact = facts[ep.where]
                np.testing.assert_array_equal(fact.actions, arrays["actions"])
                np.testing.assert_array_equal(fact.state[:-1], arrays["observations/state"])
                np.testing.assert_array_equal(fact.state[1:], arrays["next_observations/state"])
        direct = list(rlds.episode_dataset(generated_rlds.path, split, num_parallel_calls=1).as_numpy_iterator())
        assert len(direct) == len(converted) == generated_rlds.episodes[split]
        for t, a in zip(direct, converted, strict=True):
            assert [s.decode() for s in t.pop("language")] == list(a.pop("language"))
            assert t.keys() == a.keys()
            for key in t:
                np.testing.assert_array_equal(t[key], a[key], err_msg=key)
                assert t[key].dtype == a[key].dtype, key
            assert len(t["actions"]) == generated_rlds.steps - 1
