"""The raw reader: restricted unpickler, the original's quirks, bad trajectories (no TensorFlow needed)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bdv2.data_tools.errors import BadTrajectory, UnsafePickleError
from bdv2.data_tools.raw import ResizeMode, load_npy, load_pickle, read_language, read_trajectory

from . import helpers


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


def test_restricted_unpickler_refuses_code_and_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "obs_dict.pkl"
    path.write_bytes(pickle.dumps({"full_state": _Evil()}))
    with pytest.raises(UnsafePickleError, match=r"obs_dict\.pkl.*refused to load 'posix\.system'"):
        load_pickle(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_reads_numpy_lists_dicts_scalars(tmp_path: Path, protocol: int) -> None:
    value = {"a": np.arange(6.0).reshape(2, 3), "b": [np.float64(1.5), True, 3, "x", None], "c": np.int64(7)}
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    loaded = load_pickle(path)
    assert np.array_equal(loaded["a"], value["a"]) and loaded["b"] == value["b"] and loaded["c"] == 7


def test_npy_intermediate_is_read_with_the_restricted_unpickler(tmp_path: Path) -> None:
    path = tmp_path / "out.npy"
    np.save(path, np.array([{"x": _Evil()}, None], dtype=object)[:1], allow_pickle=True)
    with pytest.raises(UnsafePickleError, match=r"out\.npy"):
        load_npy(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("put the carrot\nconfidence: 0.9\n", ["put the carrot"], id="confidence-dropped"),
        pytest.param("a\n\nb", ["a", "", "b"], id="blank-kept-two-instructions"),
        pytest.param("confidence 1\n", [], id="all-confidence"),
        pytest.param(None, [""], id="missing-means-unlabeled"),
    ],
)
def test_language_lines(tmp_path: Path, text: str | None, expected: list[str]) -> None:
    if text is not None:
        (tmp_path / "lang.txt").write_text(text)
    assert read_language(tmp_path) == expected


def test_dict_actions_and_shapes(raw: Path, traj: Any, n_frames: int) -> None:
    ep = read_trajectory(traj(raw), im_size=32, latency_shift=False)
    assert ep.length == n_frames - 1
    assert set(ep.images) == {"images0", "images1"}  # depth_images0 ignored
    assert ep.images["images0"].shape == (n_frames, 32, 32, 3) and ep.images["images0"].dtype == np.uint8
    assert ep.language == ["put the carrot in the pot"]
    policy = load_pickle(traj(raw) / "policy_out.pkl")
    assert np.array_equal(ep.actions[0], policy[0]["actions"])


def test_array_actions_and_latency_shift_before_2021_07_23(raw: Path, traj: Any, n_frames: int) -> None:
    path = traj(raw, "sweep_beans")
    obs = load_pickle(path / "obs_dict.pkl")
    policy = load_pickle(path / "policy_out.pkl")
    assert isinstance(policy[0], np.ndarray)  # older data stores bare arrays
    ep = read_trajectory(path, im_size=16, latency_shift=True)
    assert ep.length == n_frames - 2  # first observation and last action dropped
    assert np.array_equal(ep.state, obs["full_state"][1:])
    assert np.array_equal(np.stack(ep.actions), np.stack(policy[:-1]))
    unshifted = read_trajectory(path, im_size=16, latency_shift=False)
    assert np.array_equal(ep.images["images0"], unshifted.images["images0"][1:])
    assert ep.language == [""]  # no lang.txt


def _no_images(path: Path) -> None:
    for cam in path.glob("images*"):
        for f in cam.iterdir():
            f.unlink()
        cam.rmdir()


FAULTS = [
    pytest.param(helpers.truncate_jpeg, "cannot decode images0/im_1.jpg", id="truncated-jpeg"),
    pytest.param(lambda p: (p / "obs_dict.pkl").unlink(), "missing obs_dict.pkl", id="missing-obs-pickle"),
    pytest.param(lambda p: (p / "policy_out.pkl").unlink(), "missing policy_out.pkl", id="missing-policy-pickle"),
    pytest.param(helpers.drop_frame, "length mismatch", id="length-mismatch"),
    pytest.param(_no_images, "no images\\* directory", id="no-images"),
    pytest.param(lambda p: (p / "policy_out.pkl").write_bytes(pickle.dumps([_Evil()])), "refused to load",
                 id="malicious-pickle"),
]


@pytest.mark.parametrize(("fault", "reason"), FAULTS)
def test_bad_trajectory_names_path_and_reason(raw: Path, traj: Any, fault: Any, reason: str) -> None:
    path = traj(raw)
    fault(path)
    with pytest.raises(BadTrajectory, match=reason) as info:
        read_trajectory(path, im_size=16, latency_shift=False, mode=ResizeMode.DRAFT)
    assert str(path) in str(info.value)
