"""Fixtures: one tiny sample raw tree per session (made by `write_sample`), copied per test to add faults, and
the RLDS datasets the RLDS tests read (helpers.RldsSample)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bdv2.data_tools.rlds.sample import EPISODES, write_rlds_sample
from bdv2.data_tools.sample import write_sample

from . import helpers

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


@pytest.fixture(name="traj")
def traj_fixture() -> Callable[..., Path]:
    """traj(raw, task, index) -> that trajectory's directory."""
    return helpers.traj


@pytest.fixture
def n_frames() -> int:
    return N_FRAMES


@pytest.fixture(scope="session")
def generated_rlds(tmp_path_factory: pytest.TempPathFactory) -> helpers.RldsSample:
    """The release-shaped generated RLDS dataset, one shard per split (like the real sample)."""
    path = write_rlds_sample(tmp_path_factory.mktemp("rlds_generated"), episodes=helpers.GENERATED_EPISODES,
                             steps=helpers.GENERATED_STEPS, shards_per_split=1)
    return helpers.RldsSample("generated", path, dict(helpers.GENERATED_EPISODES), helpers.GENERATED_STEPS)


@pytest.fixture(scope="session")
def sharded_rlds(tmp_path_factory: pytest.TempPathFactory) -> helpers.RldsSample:
    """The generated RLDS dataset with its default two shards per split."""
    path = write_rlds_sample(tmp_path_factory.mktemp("rlds_sharded"))
    return helpers.RldsSample("generated", path, dict(EPISODES), 8)


@pytest.fixture(scope="session", params=["generated", "real"])
def rlds_sample(request: pytest.FixtureRequest) -> helpers.RldsSample:
    """Each RLDS test runs on the generated dataset and on the real sample (skipped when that is absent)."""
    if request.param == "generated":
        sample: helpers.RldsSample = request.getfixturevalue("generated_rlds")
        return sample
    real = helpers.real_rlds()
    if real is None:
        pytest.skip(helpers.REAL_RLDS_MISSING)
    return real


@pytest.fixture
def real_rlds_sample() -> helpers.RldsSample:
    """The real sample only (tests whose thresholds were measured on real data)."""
    real = helpers.real_rlds()
    if real is None:
        pytest.skip(helpers.REAL_RLDS_MISSING)
    return real
