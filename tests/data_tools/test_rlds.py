"""The RLDS/TFDS reader and `rlds-to-tfrecord` on the real 50-episode BridgeData sample (skipped when absent):
conversion against the source records, the schema round trip, inspect/stats, malformed inputs, resume."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bdv2.data_tools import convert, rlds, schema
from bdv2.data_tools.cli import data
from bdv2.data_tools.errors import InputLayoutError
from bdv2.data_tools.rlds import CameraSpecError, RldsFormatError

SAMPLE = Path(os.environ.get("BDV2_RLDS_SAMPLE")
              or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bridge_rlds_debug")
pytestmark = pytest.mark.skipif(not (SAMPLE / "features.json").is_file(),
                                reason=f"real RLDS sample not found at {SAMPLE} (set BDV2_RLDS_SAMPLE)")
SHARD = "bridge_dataset-{}.tfrecord-00000-of-00001"
N_STEPS = 10
# Published BridgeData action statistics (R:experiments/configs/data_config.py, via bridgedata.md section 3.4).
ACT_MEAN = [1.9296819e-04, 1.3667766e-04, -1.4583133e-04, -1.8390431e-04, -3.0808983e-04, 2.7425270e-04, 0.59716219]
ACT_STD = [0.00912848, 0.0127196, 0.01229497, 0.02606696, 0.02875283, 0.07807977, 0.48710242]
STEPS, LOSS_DROP = 300, 0.4
"""Training test: measured here, the mean of the first three logged losses (steps 10-30) is about 10.0 and of the
last three (280-300) about 9.1 (gc_bc) and 9.3 (bc); a drop of 0.4 is far outside step-to-step noise."""


def _source(split: str, root: Path = SAMPLE) -> list[dict[str, Any]]:
    """The source episodes read independently of bdv2.rlds: protobuf + PIL, no tf.io parsing."""
    import tensorflow as tf

    out = []
    for raw in tf.data.TFRecordDataset(str(root / SHARD.format(split))):
        f = tf.train.Example.FromString(raw.numpy()).features.feature
        out.append({
            "frames": np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))
                                for b in f["steps/observation/image_0"].bytes_list.value]),
            "state": np.array(f["steps/observation/state"].float_list.value, np.float32).reshape(-1, 7),
            "action": np.array(f["steps/action"].float_list.value, np.float32).reshape(-1, 7),
            "language": {b.decode() for b in f["steps/language_instruction"].bytes_list.value},
        })
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rlds") / "tf"
    report = rlds.rlds_to_tfrecord(SAMPLE, out, num_workers=2)
    assert report.trajectories == 50 and report.frames == 50 * (N_STEPS - 1) and not report.skipped
    return out


def test_both_splits_match_the_source_records(converted: Path) -> None:
    for split in ("train", "val"):
        source = _source(split)
        episodes = list(schema.read_tfrecord(converted / "bridge_dataset" / split / "out.tfrecord"))
        assert len(episodes) == len(source) == 25
        for ep, src in zip(episodes, source, strict=True):
            t = N_STEPS - 1  # N steps -> N - 1 transitions: o_t, o_{t+1}, a_t; the last step's action dropped
            assert ep["observations/images0"].shape == ep["next_observations/images0"].shape == (t, 64, 64, 3)
            assert ep["observations/images0"].dtype == np.uint8
            assert ep["actions"].shape == ep["observations/state"].shape == (t, 7)
            assert ep["actions"].dtype == ep["observations/state"].dtype == np.float32
            assert ep["terminals"].dtype == ep["truncates"].dtype == bool
            assert not ep["terminals"].any() and ep["truncates"].tolist() == [False] * (t - 1) + [True]
            # Same JPEG decoder family (libjpeg-turbo, accurate IDCT): pixel-identical frames.
            np.testing.assert_array_equal(ep["observations/images0"], src["frames"][:-1])
            np.testing.assert_array_equal(ep["next_observations/images0"], src["frames"][1:])
            np.testing.assert_array_equal(ep["observations/state"], src["state"][:-1])
            np.testing.assert_array_equal(ep["next_observations/state"], src["state"][1:])
            np.testing.assert_array_equal(ep["actions"], src["action"][:-1])
            assert ep["language"] == sorted(src["language"]) and ep["language"] != [""]


def test_converted_files_parse_exactly_like_raw_converted_ones(converted: Path, raw: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    convert.raw_to_tfrecord(raw, tmp_path / "raw_tf", im_size=64)
    raw_file = next((tmp_path / "raw_tf").rglob("train/out.tfrecord"))
    rlds_file = converted / "bridge_dataset" / "train" / "out.tfrecord"

    def layout_of(file: Path) -> tuple[Any, ...]:
        serialized = next(iter(tf.data.TFRecordDataset(str(file))))
        features = tf.train.Example.FromString(serialized.numpy()).features.feature
        proto = {k: (v.WhichOneof("kind"), len(v.bytes_list.value)) for k, v in features.items()}
        parsed = schema.parse_example(serialized)
        return proto, {k: (v.dtype, v.shape.rank, tuple(v.shape[1:]) if k.endswith("images0") else None)
                       for k, v in parsed.items()}

    assert layout_of(rlds_file) == layout_of(raw_file)
    # And inside tf.data, as the trainer reads them.
    for batch in tf.data.TFRecordDataset(str(rlds_file)).map(schema.parse_example).take(1):
        assert batch["observations/images0"].shape == (N_STEPS - 1, 64, 64, 3)


def test_episode_dataset_reads_the_release_as_the_converted_file(converted: Path) -> None:
    direct = list(rlds.episode_dataset(SAMPLE, "val", num_parallel_calls=2).as_numpy_iterator())
    files = list(schema.read_tfrecord(converted / "bridge_dataset" / "val" / "out.tfrecord"))
    assert len(direct) == len(files) == 25
    for d, f in zip(direct, files, strict=True):
        assert [s.decode() for s in d.pop("language")] == f.pop("language")
        assert d.keys() == f.keys()
        for key in d:
            np.testing.assert_array_equal(d[key], f[key], err_msg=key)
            assert d[key].dtype == f[key].dtype


def test_stats_are_of_the_order_of_the_published_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(data, ["stats", str(SAMPLE), "--out", str(tmp_path / "stats.json")])
    assert result.exit_code == 0, result.output
    action = json.loads((tmp_path / "stats.json").read_text())["action"]
    mean, std = np.array(action["mean"]), np.array(action["std"])
    # 450 transitions of 50 real episodes vs the published full-dataset figures: each movement dimension's std
    # within a factor of 5 of the published one, means small against it, gripper in [0, 1] with a real spread.
    ratio = std[:6] / np.array(ACT_STD[:6])
    assert np.all((ratio > 0.2) & (ratio < 5)), ratio
    assert np.all(np.abs(mean[:6]) < 3 * np.array(ACT_STD[:6])), mean
    assert action["min"][6] >= 0 and action["max"][6] <= 1 and 0.2 < std[6] < 0.6 and 0.2 < mean[6] < 0.9


def test_inspect_reads_the_rlds_directory() -> None:
    result = CliRunner().invoke(data, ["inspect", str(SAMPLE.parent), "--im_size", "64"])  # one level above
    assert result.exit_code == 0, result.output
    assert "(rlds)" in result.output and "64x64x3 (50 trajectories)" in result.output
    for split in ("train", "val"):
        assert f"bridge_dataset {split}" in result.output
    assert result.output.count("225") >= 2 and "25/25" in result.output  # frames and labeled per split


def test_cli_resume_overwrite_and_resize(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["rlds-to-tfrecord", "--input_path", str(SAMPLE), "--output_path", str(out), "--num_workers", "2"]
    first = CliRunner().invoke(data, [*args, "--im_size", "32"])
    assert first.exit_code == 0, first.output
    files = sorted(out.rglob("*.tfrecord"))
    assert [f.relative_to(out).as_posix() for f in files] == ["bridge_dataset/train/out.tfrecord",
                                                              "bridge_dataset/val/out.tfrecord"]
    assert next(schema.read_tfrecord(files[0]))["observations/images0"].shape == (9, 32, 32, 3)
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = CliRunner().invoke(data, args)
    assert again.exit_code == 0 and "2 already finished" in again.output
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    redo = CliRunner().invoke(data, [*args, "--overwrite"])
    assert redo.exit_code == 0 and "2 written" in redo.output
    assert next(schema.read_tfrecord(files[0]))["observations/images0"].shape == (9, 64, 64, 3)
    assert not list(out.rglob("*.partial"))


def test_more_than_one_camera_is_refused_with_the_reason(tmp_path: Path) -> None:
    args = ["rlds-to-tfrecord", "--input_path", str(SAMPLE), "--output_path", str(tmp_path / "o")]
    result = CliRunner().invoke(data, [*args, "--cameras", "0,1"])
    assert result.exit_code == 2 and "observations/images0" in result.output
    with pytest.raises(CameraSpecError, match="single index"):
        rlds.parse_cameras("0,2")
    with pytest.raises(RldsFormatError, match=r"'steps/observation/image_7' is missing \(cameras declared: 0, 1"):
        rlds.rlds_to_tfrecord(SAMPLE, tmp_path / "o", cameras=(7,))


def test_a_blank_placeholder_camera_is_skipped_and_reported(tmp_path: Path) -> None:
    report = rlds.rlds_to_tfrecord(SAMPLE, tmp_path / "o", cameras=(3,))  # image_3 is all zeros in the sample
    assert report.trajectories == 0 and len(report.skipped) == 50
    assert "image_3 is blank in every frame" in report.skipped[0].reason


def test_several_shards_give_one_part_dir_each(tmp_path: Path) -> None:
    import tensorflow as tf

    src = Path(shutil.copytree(SAMPLE, tmp_path / "src", copy_function=shutil.copyfile))
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(src / SHARD.format("train")))]
    (src / SHARD.format("train")).unlink()
    for i, part in enumerate((records[:12], records[12:])):
        with tf.io.TFRecordWriter(str(src / f"bridge_dataset-train.tfrecord-{i:05d}-of-00002")) as writer:
            for r in part:
                writer.write(r)
    info = json.loads((src / "dataset_info.json").read_text())
    info["splits"][0]["shardLengths"] = ["12", "13"]
    (src / "dataset_info.json").write_text(json.dumps(info))
    report = rlds.rlds_to_tfrecord(src, tmp_path / "o")
    rel = sorted(f.relative_to(tmp_path / "o").as_posix() for f in report.written)
    assert rel == ["bridge_dataset/part00000/train/out.tfrecord", "bridge_dataset/part00000/val/out.tfrecord",
                   "bridge_dataset/part00001/train/out.tfrecord"]
    assert [len(list(schema.read_tfrecord(tmp_path / "o" / r))) for r in rel] == [12, 25, 13]


# ------------------------------------------------------------------------------------------ malformed inputs

@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SAMPLE, tmp_path / "src", copy_function=shutil.copyfile))


def _edit_features(root: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    tree = json.loads((root / "features.json").read_text())
    steps = tree["featuresDict"]["features"]["steps"]["sequence"]["feature"]["featuresDict"]["features"]
    edit(steps)
    (root / "features.json").write_text(json.dumps(tree))


def _edit_record(root: Path, index: int, edit: Callable[[Any], None]) -> None:
    import tensorflow as tf

    shard = root / SHARD.format("val")
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
    example = tf.train.Example.FromString(records[index])
    edit(example.features.feature)
    records[index] = example.SerializeToString()
    with tf.io.TFRecordWriter(str(shard)) as writer:
        for r in records:
            writer.write(r)


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


def test_feature_missing_from_a_record(copy: Path, tmp_path: Path) -> None:
    _edit_record(copy, 3, lambda f: f.pop("steps/observation/state"))
    _fails(copy, tmp_path / "o", r"-val\.tfrecord-00000-of-00001\[3\]: feature 'steps/observation/state' is missing")


def test_feature_with_the_wrong_number_of_values(copy: Path, tmp_path: Path) -> None:
    def cut(f: Any) -> None:
        del f["steps/action"].float_list.value[-7:]

    _edit_record(copy, 5, cut)
    _fails(copy, tmp_path / "o", r"\[5\]: feature 'steps/action' has 63 values \(float_list\); expected 10 steps x 7")


def test_frames_of_another_size_than_declared(copy: Path, tmp_path: Path) -> None:
    def shrink(f: Any) -> None:
        frames = f["steps/observation/image_0"].bytes_list.value
        for i, b in enumerate(frames):
            buf = io.BytesIO()
            Image.open(io.BytesIO(b)).resize((32, 32)).save(buf, "JPEG")
            frames[i] = buf.getvalue()

    _edit_record(copy, 0, shrink)
    _fails(copy, tmp_path / "o", r"\[0\]: feature 'steps/observation/image_0' decodes to \[32, 32, 3\]; "
                                 r"features\.json declares \[64, 64, 3\]")


def test_truncated_shard(copy: Path, tmp_path: Path) -> None:
    shard = copy / SHARD.format("val")
    shard.write_bytes(shard.read_bytes()[:-5000])
    _fails(copy, tmp_path / "o", r"-val\.tfrecord-00000-of-00001: truncated or corrupt TFRecord after 24 records")


def test_shard_cut_between_records(copy: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    shard = copy / SHARD.format("val")
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))][:-1]
    with tf.io.TFRecordWriter(str(shard)) as writer:
        for r in records:
            writer.write(r)
    _fails(copy, tmp_path / "o", r"24 episodes, dataset_info\.json says 25")


def test_not_a_tfds_directory_and_missing_shard(copy: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputLayoutError, match="not a TFDS/RLDS dataset directory"):
        rlds.rlds_to_tfrecord(tmp_path / "empty", tmp_path / "o")
    (copy / SHARD.format("train")).unlink()
    with pytest.raises(InputLayoutError, match=r"-train\.tfrecord-00000-of-00001: shard listed in dataset_info"):
        rlds.rlds_to_tfrecord(copy, tmp_path / "o")


# ------------------------------------------------------------------------------------------ training on it

@pytest.mark.slow
@pytest.mark.parametrize("algo", ["gc_bc", "bc"])
def test_short_cpu_training_on_the_converted_sample_learns(algo: str, converted: Path, tmp_path: Path) -> None:
    """The shipped example config (tiny encoder, 64x64) on the converted real sample: the training loss falls
    clearly and validation metrics are finite. About a minute per algorithm on 2 CPU cores."""
    pytest.importorskip("jax")
    root = converted / "bridge_dataset"
    stats = CliRunner().invoke(data, ["stats", str(root), "--out", str(converted / "metadata.json")])
    assert stats.exit_code == 0, stats.output
    yaml_file = Path(__file__).resolve().parents[2] / "data_tools" / "configs" / "rlds_sample.yaml"
    overrides = {"data_root": str(converted), "save_dir": str(tmp_path / "runs"), "num_steps": STEPS,
                 "eval_interval": STEPS, "save_interval": STEPS}
    # A child process, as `bdv2 train` runs each experiment: TFP picks its TensorFlow substrate (and wants
    # tf_keras) when TensorFlow was imported first, as this test process has.
    code = (
        "import json, sys; from pathlib import Path; from bdv2.trainer import config, loop\n"
        f"exp = config.load(Path({str(yaml_file)!r}), overrides={overrides!r})\n"
        f"run = next(r for r in exp.runs if r.name.startswith({algo + '_'!r}))\n"
        f"print(json.dumps(loop.train_and_evaluate(run, Path({str(tmp_path / 'run')!r})).status))\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert child.returncode == 0 and child.stdout.strip().endswith('"finished"'), child.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    start, end = float(np.mean(train[:3])), float(np.mean(train[-3:]))
    assert end < start - LOSS_DROP, (start, end)
    assert val and all(np.isfinite(v) for r in val for v in r.values() if isinstance(v, float))
