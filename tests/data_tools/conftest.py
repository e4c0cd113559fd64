"""Fixtures: one tiny sample raw tree per session (made by `write_sample`), copied per test to add faults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bdv2.data_tools.sample import write_sample

# 3 task dirs x 3 trajectories x 4 frames x 2 cameras: about 1 s to write.
N_TRAJ, N_FRAMES, N_CAMS = 3, 4, 2


@pytest.fixture(scope="session")
def sample_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample(tmp_path_factory.mktemp("sample") / "raw", n_trajectories=N_TRAJ, n_frames=N_FRAMES,
                        n_cameras=N_CAMS)


@pytest.fixture
def raw(sample_master: Path, tmp_path: Path) -> Path:
    """A private copy of the sample raw tree that a test may damage."""
    return Path(shutil.copytree(sample_master, tmp_path / "raw"))


def traj(raw: Path, task: str = "put_carrot_in_pot", index: int = 0) -> Path:
    return next(raw.rglob(f"{task}/00/*/raw/traj_group0/traj{index}"))


@pytest.fixture(name="traj")
def traj_fixture() -> object:
    """traj(raw, task, index) -> that trajectory's directory."""
    return traj


@pytest.fixture
def n_frames() -> int:
    return N_FRAMES
