"""Fixtures of the trainer tests (the helpers they use live in helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import helpers


@pytest.fixture(scope="session")
def tfdata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return helpers.write_tree(tmp_path_factory.mktemp("trainer") / "tf")


@pytest.fixture(scope="session")
def rlds_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release-shaped RLDS dataset directory written by data_tools.rlds.sample (9 episodes of 8 steps, 64 px).

    One shard per split: the converted TFRecords are then one file per split, which the RLDS reader and the
    TFRecord reader stream in the same order (see test_train_rlds.py)."""
    from bdv2.data_tools.rlds.sample import write_rlds_sample

    return write_rlds_sample(tmp_path_factory.mktemp("rlds_sample"), **helpers.RLDS_SAMPLE_ARGS)
