"""bdv2.data_tools.rlds.sample: the generated RLDS dataset is deterministic, declares what it holds, has the
release's feature tree and record keys (checked against the real sample when present), and `bdv2 data sample
--format rlds` writes it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bdv2.data_tools import rlds, schema
from bdv2.data_tools.cli import data
from bdv2.data_tools.errors import DataToolsError
from bdv2.data_tools.rlds.sample import write_rlds_sample

from .helpers import RldsSample, read_records


def test_the_generated_dataset_is_deterministic(tmp_path: Path) -> None:
    a = write_rlds_sample(tmp_path / "a", episodes={"train": 2, "val": 1}, steps=3, seed=4)
    b = write_rlds_sample(tmp_path / "b", episodes={"train": 2, "val": 1}, steps=3, seed=4)
    c = write_rlds_sample(tmp_path / "c", episodes={"train": 2, "val": 1}, steps=3, seed=5)
    assert a == tmp_path / "a" / "bridge_dataset" / "1.0.0"
    names = sorted(f.name for f in a.iterdir())
    assert names == ["bridge_dataset-train.tfrecord-00000-of-00002", "bridge_dataset-train.tfrecord-00001-of-00002",
                     "bridge_dataset-val.tfrecord-00000-of-00001", "dataset_info.json", "features.json"]
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    assert (a / names[0]).read_bytes() != (c / names[0]).read_bytes()
    with pytest.raises(DataToolsError, match="not empty"):
        write_rlds_sample(tmp_path / "a")


def test_the_generated_dataset_has_the_release_feature_tree(generated_rlds: RldsSample,
                                                            real_rlds_sample: RldsSample) -> None:
    def tree(path: Path) -> Any:
        def strip(t: Any) -> Any:
            return {k: strip(v) for k, v in t.items() if k != "description"} if isinstance(t, dict) else t
        return strip(json.loads((path / "features.json").read_text()))

    assert tree(generated_rlds.path) == tree(real_rlds_sample.path)
    assert rlds.open_dir(generated_rlds.path).features == rlds.open_dir(real_rlds_sample.path).features
    import tensorflow as tf

    def keys(sample: RldsSample) -> dict[str, tuple[str | None, int]]:
        f = tf.train.Example.FromString(read_records(sample.shard("val"))[0]).features.feature
        return {k: (v.WhichOneof("kind"), len(getattr(v, v.WhichOneof("kind") or "").value) // sample.steps
                    if k.startswith("steps/") else 1) for k, v in f.items()}

    assert keys(generated_rlds) == keys(real_rlds_sample)


def test_the_generated_dataset_matches_its_declaration(generated_rlds: RldsSample) -> None:
    import tensorflow as tf

    d = rlds.open_dir(generated_rlds.path)
    assert d.name == "bridge_dataset" and d.lengths == {"train": [6], "val": [3]}
    assert d.features["steps/language_embedding"].shape == (512,)
    for i, record in enumerate(read_records(generated_rlds.shard("train"))):
        f = tf.train.Example.FromString(record).features.feature
        n = generated_rlds.steps
        assert len(f["steps/language_embedding"].float_list.value) == 512 * n
        assert list(f["steps/is_first"].int64_list.value) == [1] + [0] * (n - 1)
        assert list(f["steps/is_last"].int64_list.value) == [0] * (n - 1) + [1]
        assert list(f["steps/action"].float_list.value)[-7:] == [0.0] * 7  # the release's zero last action
        for k in range(4):
            frames = [np.asarray(Image.open(io.BytesIO(b))) for b in f[f"steps/observation/image_{k}"].bytes_list.value]
            assert len(frames) == n and frames[0].shape == (64, 64, 3)
            assert f[f"episode_metadata/has_image_{k}"].int64_list.value[0] == int(any(fr.max() > 0 for fr in frames))
        assert f["episode_metadata/has_image_2"].int64_list.value[0] == int(i % 2 == 0)


def test_unlabeled_generated_episodes_convert_with_an_empty_instruction(tmp_path: Path) -> None:
    root = write_rlds_sample(tmp_path / "s", episodes={"train": 2}, steps=3, language=False, shards_per_split=1)
    report = rlds.rlds_to_tfrecord(root, tmp_path / "o")
    assert report.trajectories == 2 and any("only train is written" in n for n in report.notes)
    episodes = list(schema.read_tfrecord(tmp_path / "o" / "bridge_dataset" / "train" / "out.tfrecord"))
    assert [ep["language"] for ep in episodes] == [[""], [""]]


def test_cli_sample_format_rlds(tmp_path: Path) -> None:
    result = CliRunner().invoke(data, ["sample", "--format", "rlds", "--out", str(tmp_path / "s"),
                                       "--trajectories", "2", "--frames", "3"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "s" / "bridge_dataset" / "1.0.0"
    assert str(root) in result.output
    assert rlds.open_dir(root).lengths == {"train": [1, 1], "val": [1]}
    again = CliRunner().invoke(data, ["sample", "--format", "rlds", "--out", str(tmp_path / "s")])
    assert again.exit_code == 1 and "not empty" in again.output
