"""Training straight from an RLDS/TFDS directory (the release as downloaded): the task resolves to the directory
in place, its batches are exactly those of the same data converted by `bdv2 data rlds-to-tfrecord`, and a
short gc_bc run on it finishes.

Two layers, each test running on both:
  * generated: a release-shaped dataset written by data_tools.rlds.sample (always runs);
  * real: the real 50-episode sample at $BDV2_RLDS_SAMPLE (tests/real_sample.py; skipped when unset), where the
    exact numbers of that sample are checked too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import real_sample

from bdv2.trainer import config, data, loop, model

from . import helpers

BATCH = 16


@dataclass(frozen=True)
class Sample:
    path: Path
    """The RLDS dataset directory (dataset_info.json + features.json + shards)."""
    image_size: int
    val_batches: int
    """Validation batches of BATCH rows the sample's val split gives (the last one partial)."""


@pytest.fixture(scope="module", params=["generated", "real"])
def sample(request: pytest.FixtureRequest) -> Sample:
    if request.param == "generated":
        args = helpers.RLDS_SAMPLE_ARGS
        val_rows = args["episodes"]["val"] * (args["steps"] - 1)  # steps - 1 transitions per episode
        return Sample(request.getfixturevalue("rlds_generated"), args["image_size"], math.ceil(val_rows / BATCH))
    if not real_sample.present() or real_sample.PATH is None:
        pytest.skip(real_sample.SKIP_REASON)
    return Sample(real_sample.PATH, 64, 15)  # 25 episodes x 9 transitions / 16, the last one partial


@pytest.fixture(scope="module")
def converted(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample converted to bdv2 TFRecords, and <out>/metadata.json from `bdv2 data stats` on them."""
    from bdv2.data_tools import rlds
    from bdv2.data_tools.summary import compute_stats

    out = tmp_path_factory.mktemp("rlds") / "tf"
    rlds.rlds_to_tfrecord(sample.path, out, num_workers=2)
    (out / "metadata.json").write_text(json.dumps(compute_stats(out / "bridge_dataset")))
    return out


def _run(tmp_path: Path, data_root: Path, task: str, metadata: Path, name: str, **over: Any) -> model.Run:
    g = helpers.base_global(data_root, tmp_path / "runs", metadata=str(metadata), train_batch_size=BATCH,
                            val_batch_size=BATCH, **over)
    y = helpers.write_yaml(tmp_path / f"{name}.yaml",
                           {"global": g, "runs": [{"algo": "gc_bc", "task": task, "name": name}]})
    return config.load(y).runs[0]


def _leaves(batch: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if isinstance(batch, dict):
        return {k: v for key, sub in batch.items() for k, v in _leaves(sub, f"{prefix}{key}/").items()}
    return {prefix.rstrip("/"): batch}


def test_a_task_resolves_to_the_rlds_directory_in_place(sample: Sample, converted: Path, tmp_path: Path) -> None:
    meta = converted / "metadata.json"
    path = sample.path
    by_name = _run(tmp_path, path.parent, path.name, meta, "by_name")  # data_root holds the dataset dir
    [src] = by_name.task.sources
    assert src.rlds_train == (str(path),) and src.rlds_val == (str(path),) and src.train_files == ()
    itself = _run(tmp_path, path, "bridge_dataset", meta, "itself")  # data_root is the dataset dir
    assert itself.task.sources[0].rlds_train == (str(path),)
    assert model.Run.from_dict(json.loads(json.dumps(itself.to_dict()))) == itself  # run.json round trip
    with pytest.raises(config.ConfigError, match=r"no train/out\.tfrecord under"):
        _run(tmp_path, path, "bridge_datset", meta, "typo")  # a typo is not silently the whole directory


def test_rlds_batches_equal_the_converted_tfrecord_batches(sample: Sample, converted: Path, tmp_path: Path) -> None:
    """Same trajectory order (one shard = one converted file, episodes in order), so the same seeds, goals,
    shuffles and augmentation: the batches are identical, not only alike in shape."""
    meta = converted / "metadata.json"
    direct = _run(tmp_path, sample.path.parent, sample.path.name, meta, "direct")
    via_tf = _run(tmp_path, converted, "bridge_dataset", meta, "via_tf")
    got, want = data.train_iterator(direct), data.train_iterator(via_tf)
    for _ in range(2):
        a, b = _leaves(next(got)), _leaves(next(want))
        assert a.keys() == b.keys()
        assert a["observations/image"].shape == (BATCH, sample.image_size, sample.image_size, 3)
        for key in a:
            assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    val_a = [_leaves(v) for v in data.val_batches(direct, devices=1, limit=None)]
    val_b = [_leaves(v) for v in data.val_batches(via_tf, devices=1, limit=None)]
    assert len(val_a) == len(val_b) == sample.val_batches
    np.testing.assert_array_equal(val_a[-1]["goals/image"], val_b[-1]["goals/image"])


def test_short_gc_bc_run_reads_the_rlds_directory(sample: Sample, converted: Path, tmp_path: Path) -> None:
    run = _run(tmp_path, sample.path.parent, sample.path.name, converted / "metadata.json", "rlds_gc_bc",
               num_steps=6, log_interval=3, eval_interval=6, save_interval=6, eval_batches=2)
    result = loop.train_and_evaluate(run)
    assert result.status == "finished" and result.steps == 6 and result.checkpoint.endswith("/6")
    assert result.train_loss is not None and np.isfinite(result.train_loss)
    assert result.val_loss is not None and np.isfinite(result.val_loss)


def test_one_glob_matching_tfrecords_and_rlds_is_refused(sample: Sample, converted: Path, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "converted").symlink_to(converted / "bridge_dataset")
    (root / "release").symlink_to(sample.path)
    with pytest.raises(config.ConfigError, match=r"matches both converted TFRecords .* and RLDS dataset "
                                                 r"directories"):
        _run(tmp_path, root, "*", converted / "metadata.json", "mixed")
    assert _run(tmp_path, root, "release", converted / "metadata.json", "rel").task.sources[0].rlds_train
