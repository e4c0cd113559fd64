"""Include groups with one sample weight per group, as the original's data config
(https://github.com/rail-berkeley/bridge_data_v2/blob/main/experiments/configs/data_config.py: ``include`` is a
list of lists of globs, ``sample_weights`` one weight per list, each list read as one dataset).

The sampled share of each group over many transitions is compared with the weights and with the original's
BridgeDataset (its tf.data.Dataset.sample_from_datasets) reading the same files with the same weights."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bdv2.data_tools import schema
from bdv2.trainer import config, data, model
from bdv2.trainer.errors import ConfigError

from . import helpers

TASK_SHADE = {"kitchen/put_carrot": 10, "kitchen/open_drawer": 100, "sink/sweep": 200}
"""Every frame of a task has this value: a sampled transition tells its task."""
GROUPS = [["kitchen/put_carrot", "sink"], "kitchen/open_drawer"]
WEIGHTS = [3, 1]
N = 3000  # transitions drawn


@pytest.fixture(scope="module")
def shaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tensorflow as tf

    data.hide_gpus_from_tf()
    root = tmp_path_factory.mktemp("groups")
    rng = np.random.default_rng(0)
    for task, shade in TASK_SHADE.items():
        out = root / task / "train"
        out.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(out / "out.tfrecord")) as w:
            for _ in range(3):
                arrays = helpers.trajectory(rng, 8)
                arrays["observations/images0"][:] = shade
                arrays["next_observations/images0"][:] = shade
                w.write(schema.encode_example(arrays))
    (root / "metadata.json").write_text(json.dumps({"action": {"mean": [0.0] * 7, "std": [1.0] * 7},
                                                    "proprio": {"mean": [0.0] * 7, "std": [1.0] * 7}}))
    return root


def _load(root: Path, tmp_path: Path, task: dict[str, Any], **over: Any) -> model.Experiments:
    g = helpers.base_global(root, tmp_path / "runs", train_batch_size=50, augment=False, shuffle_buffer_size=100,
                            **over)
    y = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "tasks": {"mix": task},
                                                 "matrix": {"algos": ["gc_bc"], "tasks": ["mix"]}})
    return config.load(y)


def _shares(shades: np.ndarray) -> dict[str, float]:
    return {task: float(np.mean(shades == v)) for task, v in TASK_SHADE.items()}


def test_a_group_is_one_source(shaded: Path, tmp_path: Path) -> None:
    task = _load(shaded, tmp_path, {"include": GROUPS, "sample_weights": WEIGHTS}).runs[0].task
    assert [s.weight for s in task.sources] == [0.75, 0.25]
    assert [Path(f).parts[-3] for f in task.sources[0].train_files] == ["put_carrot", "sweep"]
    assert task.sources[0].pattern == "kitchen/put_carrot + sink"
    flat = _load(shaded, tmp_path, {"include": ["kitchen/*", "sink"]}).runs[0].task  # a glob per group, as before
    assert [len(s.train_files) for s in flat.sources] == [2, 1] and [s.weight for s in flat.sources] == [0.5, 0.5]


def test_group_shares_match_the_weights_and_the_original(shaded: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    run = _load(shaded, tmp_path, {"include": GROUPS, "sample_weights": WEIGHTS}).runs[0]
    batches = itertools.islice(data.train_iterator(run), N // 50)
    ours = _shares(np.concatenate([b["observations"]["image"][:, 0, 0, 0] for b in batches]))

    from original_code import import_original

    import_original()
    from jaxrl_m.data.bridge_dataset import BridgeDataset

    stats = {"mean": [0.0] * 7, "std": [1.0] * 7}
    paths = [[f for f in s.train_files] for s in run.task.sources]
    tf.random.set_seed(0)
    theirs_ds = BridgeDataset(paths, 0, batch_size=50, shuffle_buffer_size=100, train=True,
                              goal_relabeling_kwargs={"reached_proportion": 0.0},
                              action_proprio_metadata={"action": stats, "proprio": stats},
                              sample_weights=[w / sum(WEIGHTS) for w in WEIGHTS])
    theirs = _shares(np.concatenate([b["observations"]["image"][:, 0, 0, 0]
                                     for b in itertools.islice(theirs_ds.tf_dataset.as_numpy_iterator(), N // 50)]))
    group = {"put_carrot+sweep": ("kitchen/put_carrot", "sink/sweep"), "open_drawer": ("kitchen/open_drawer",)}
    want = {"put_carrot+sweep": 0.75, "open_drawer": 0.25}
    sigma = np.sqrt(0.75 * 0.25 / N)  # each transition picks its group independently
    for name, tasks in group.items():
        got_ours, got_theirs = sum(ours[t] for t in tasks), sum(theirs[t] for t in tasks)
        assert abs(got_ours - want[name]) < 5 * sigma, (name, ours)
        assert abs(got_theirs - want[name]) < 5 * sigma, (name, theirs)  # the reference itself
        assert abs(got_ours - got_theirs) < 5 * np.sqrt(2) * sigma, (name, ours, theirs)
    # inside a group, files are one dataset: each task of the group gets about half (3 trajectories each)
    assert abs(ours["kitchen/put_carrot"] - ours["sink/sweep"]) < 0.1, ours
    assert abs(theirs["kitchen/put_carrot"] - theirs["sink/sweep"]) < 0.1, theirs


@pytest.mark.parametrize(("task", "message"), [
    ({"include": GROUPS, "sample_weights": [1, 2, 3]},
     r"m\.yaml: tasks\.mix\.sample_weights: expected 2 positive numbers \(one per include group"),
    ({"include": GROUPS, "sample_weights": [1]}, r"tasks\.mix\.sample_weights: expected 2 positive numbers"),
    ({"include": [["sink", 3]]}, r"tasks\.mix\.include: expected a list of globs .* or a list of lists"),
    ({"include": [[]]}, r"tasks\.mix\.include: expected"),
    ({"include": [["sink", "nowhere/*"]]}, r"tasks\.mix\.include\[0\]\[1\]: no train/out\.tfrecord"),
])
def test_group_errors_name_the_task(shaded: Path, tmp_path: Path, task: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(shaded, tmp_path, task)


def test_a_group_cannot_mix_tfrecords_and_rlds(shaded: Path, rlds_generated: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "root"
    shutil.copytree(shaded, root)
    shutil.copytree(rlds_generated, root / "release")
    with pytest.raises(ConfigError, match=r"tasks\.mix\.include\[0\]: the group mixes converted TFRecords \(sink\) "
                                          r"and RLDS dataset directories \(release\)"):
        _load(root, tmp_path, {"include": [["sink", "release"]]})
    assert len(_load(root, tmp_path, {"include": ["sink", "release"]}).runs[0].task.sources) == 2  # two groups: fine
