"""`rlds-to-tfrecord` on malformed copies of the RLDS datasets (generated, and real when present): each fault is
reported with the file, the record and the feature, and leaves no finished or temporary output behind."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bdv2.data_tools import rlds
from bdv2.data_tools.errors import InputLayoutError
from bdv2.data_tools.rlds import RldsFormatError

from .helpers import RldsSample, read_records, rewrite_records


@pytest.fixture
def copy(rlds_sample: RldsSample, tmp_path: Path) -> Path:
    return Path(shutil.copytree(rlds_sample.path, tmp_path / "src", copy_function=shutil.copyfile))


def _edit_features(root: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    tree = json.loads((root / "features.json").read_text())
    steps = tree["featuresDict"]["features"]["steps"]["sequence"]["feature"]["featuresDict"]["features"]
    edit(steps)
    (root / "features.json").write_text(json.dumps(tree))


def _val_shard(root: Path, sample: RldsSample) -> Path:
    return root / sample.shard("val").name


def _edit_record(root: Path, sample: RldsSample, index: int, edit: Callable[[Any], None]) -> None:
    import tensorflow as tf

    shard = _val_shard(root, sample)
    records = read_records(shard)
    example = tf.train.Example.FromString(records[index])
    edit(example.features.feature)
    records[index] = example.SerializeToString()
    rewrite_records(shard, records)


def _fails(root: Path, out: Path, match: str) -> None:
    with pytest.raises(RldsFormatError, match=match):
        rlds.rlds_to_tfrecord(root, out)
    # Atomic: the failed split leaves no finished file and no temporary one.
    assert not (out / "bridge_dataset" / "val" / "out.tfrecord").exists()
    assert not list(out.rglob("*.partial"))


def test_feature_missing_from_features_json(copy: Path, tmp_path: Path) -> None:
    _edit_features(copy, lambda steps: steps["observation"]["featuresDict"]["features"].pop("state"))
    with pytest.raises(RldsFormatError, match=r"features\.json: feature 'steps/observation/state' is missing"):
        rlds.rlds_to_tfrecord(copy, tmp_path / "o")


def test_feature_declared_with_another_shape(copy: Path, tmp_path: Path) -> None:
    _edit_features(copy, lambda steps: steps["action"]["tensor"]["shape"].update(dimensions=["10"]))
    with pytest.raises(RldsFormatError, match=r"'steps/action' is float32 \[10\]; bdv2 needs float32 \[7\]"):
        rlds.rlds_to_tfrecord(copy, tmp_path / "o")


def test_feature_missing_from_a_record(rlds_sample: RldsSample, copy: Path, tmp_path: Path) -> None:
    i = min(3, rlds_sample.episodes["val"] - 1)
    _edit_record(copy, rlds_sample, i, lambda f: f.pop("steps/observation/state"))
    _fails(copy, tmp_path / "o", rf"-val\.tfrecord-00000-of-00001\[{i}\]: feature 'steps/observation/state' is missing")


def test_feature_with_the_wrong_number_of_values(rlds_sample: RldsSample, copy: Path, tmp_path: Path) -> None:
    def cut(f: Any) -> None:
        del f["steps/action"].float_list.value[-7:]

    i, n = min(5, rlds_sample.episodes["val"] - 1), rlds_sample.steps
    _edit_record(copy, rlds_sample, i, cut)
    _fails(copy, tmp_path / "o", rf"\[{i}\]: feature 'steps/action' has {7 * (n - 1)} values \(float_list\); "
                                 rf"expected {n} steps x 7")


def test_frames_of_another_size_than_declared(rlds_sample: RldsSample, copy: Path, tmp_path: Path) -> None:
    def shrink(f: Any) -> None:
        frames = f["steps/observation/image_0"].bytes_list.value
        for i, b in enumerate(frames):
            buf = io.BytesIO()
            Image.open(io.BytesIO(b)).resize((32, 32)).save(buf, "JPEG")
            frames[i] = buf.getvalue()

    _edit_record(copy, rlds_sample, 0, shrink)
    _fails(copy, tmp_path / "o", r"\[0\]: feature 'steps/observation/image_0' decodes to \[32, 32, 3\]; "
                                 r"features\.json declares \[64, 64, 3\]")


def test_truncated_shard(rlds_sample: RldsSample, copy: Path, tmp_path: Path) -> None:
    shard = _val_shard(copy, rlds_sample)
    shard.write_bytes(shard.read_bytes()[:-5000])
    n = rlds_sample.episodes["val"]
    intact = "the record before it is intact" if n == 2 else f"the {n - 1} records before it are intact"
    _fails(copy, tmp_path / "o", rf"-val\.tfrecord-00000-of-00001: truncated TFRecord: the file ends inside "
                                 rf"record {n} .*; {intact}\. Fix: download this shard again")
    # inspect lists it and goes on with the train shards; stats refuses
    from click.testing import CliRunner

    from bdv2.data_tools.cli import data

    res = CliRunner().invoke(data, ["inspect", str(copy)])
    assert res.exit_code == 1 and f"problem: {shard}: truncated TFRecord" in res.output, res.output
    assert f"{rlds_sample.episodes['train']}" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(data, ["stats", str(copy), "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 1 and f"{shard}: truncated TFRecord" in res.output


def test_shard_cut_between_records(rlds_sample: RldsSample, copy: Path, tmp_path: Path) -> None:
    shard = _val_shard(copy, rlds_sample)
    rewrite_records(shard, read_records(shard)[:-1])
    n = rlds_sample.episodes["val"]
    _fails(copy, tmp_path / "o", rf"{n - 1} episodes, dataset_info\.json says {n}")


def test_not_a_tfds_directory_and_missing_shard(rlds_sample: RldsSample, copy: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputLayoutError, match="empty: this folder is empty"):
        rlds.rlds_to_tfrecord(tmp_path / "empty", tmp_path / "o")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a dataset")
    with pytest.raises(InputLayoutError, match="other: not a TFDS/RLDS dataset directory"):
        rlds.rlds_to_tfrecord(tmp_path / "other", tmp_path / "o")
    (copy / rlds_sample.shard("train").name).unlink()
    with pytest.raises(InputLayoutError, match=r"-train\.tfrecord-00000-of-00001: shard listed in dataset_info"):
        rlds.rlds_to_tfrecord(copy, tmp_path / "o")
