"""Fixtures of the trainer tests (the helpers they use live in helpers.py)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from . import helpers


@pytest.fixture(scope="session", autouse=True)
def _tensorflow_off_the_gpu() -> None:
    """What worker.main does before training, for the tests that call loop.train_and_evaluate in-process: on a
    machine with an NVIDIA GPU, TensorFlow would otherwise reserve the memory JAX trains in."""
    if shutil.which("nvidia-smi") is None or importlib.util.find_spec("tensorflow") is None:
        return
    from bdv2.trainer.data import hide_gpus_from_tf

    hide_gpus_from_tf()


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
