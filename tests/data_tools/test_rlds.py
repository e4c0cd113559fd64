"""The RLDS/TFDS reader and `rlds-to-tfrecord`, on the release-shaped dataset that rlds_sample writes and on the
real 50-episode BridgeData sample (skipped when absent): conversion against the source records, the schema round
trip, inspect/stats, malformed inputs, resume."""

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
from bdv2.data_tools.errors import DataToolsError, InputLayoutError
from bdv2.data_tools.rlds import CameraSpecError, RldsFormatError
from bdv2.data_tools.rlds_sample import write_rlds_sample
from bdv2.data_tools.summary import relabel_actions

from .helpers import REAL_RLDS_MISSING, RldsSample, read_records, real_rlds, rewrite_records, source_episodes

# Published BridgeData action statistics (experiments/configs/data_config.py in
# https://github.com/rail-berkeley/bridge_data_v2).
ACT_MEAN = [1.9296819e-04, 1.3667766e-04, -1.4583133e-04, -1.8390431e-04, -3.0808983e-04, 2.7425270e-04, 0.59716219]
ACT_STD = [0.00912848, 0.0127196, 0.01229497, 0.02606696, 0.02875283, 0.07807977, 0.48710242]
STEPS, LOSS_DROP = 300, 0.4
"""Training test: measured here, the mean of the first three logged losses (steps 10-30) is about 10.0 and of the
last three (280-300) about 9.1 (gc_bc) and 9.3 (bc); a drop of 0.4 is far outside step-to-step noise."""


@pytest.fixture(scope="module")
def converted(rlds_sample: RldsSample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rlds") / "tf"
    report = rlds.rlds_to_tfrecord(rlds_sample.path, out, num_workers=2)
    s = rlds_sample
    assert report.trajectories == s.total and report.frames == s.total * (s.steps - 1) and not report.skipped
    return out


def test_both_splits_match_the_source_records(rlds_sample: RldsSample, converted: Path) -> None:
    for split in ("train", "val"):
        source = source_episodes(rlds_sample, split)
        episodes = list(schema.read_tfrecord(converted / "bridge_dataset" / split / "out.tfrecord"))
        assert len(episodes) == len(source) == rlds_sample.episodes[split]
        for ep, src in zip(episodes, source, strict=True):
            t = rlds_sample.steps - 1  # N steps -> N - 1 transitions: o_t, o_{t+1}, a_t; the last action dropped
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


def test_converted_files_parse_exactly_like_raw_converted_ones(rlds_sample: RldsSample, converted: Path, raw: Path,
                                                               tmp_path: Path) -> None:
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
        assert batch["observations/images0"].shape == (rlds_sample.steps - 1, 64, 64, 3)


def test_episode_dataset_reads_the_release_as_the_converted_file(rlds_sample: RldsSample, converted: Path) -> None:
    direct = list(rlds.episode_dataset(rlds_sample.path, "val", num_parallel_calls=2).as_numpy_iterator())
    files = list(schema.read_tfrecord(converted / "bridge_dataset" / "val" / "out.tfrecord"))
    assert len(direct) == len(files) == rlds_sample.episodes["val"]
    for d, f in zip(direct, files, strict=True):
        assert [s.decode() for s in d.pop("language")] == f.pop("language")
        assert d.keys() == f.keys()
        for key in d:
            np.testing.assert_array_equal(d[key], f[key], err_msg=key)
            assert d[key].dtype == f[key].dtype


def test_stats_are_of_the_order_of_the_published_ones(real_rlds_sample: RldsSample, tmp_path: Path) -> None:
    result = CliRunner().invoke(data, ["stats", str(real_rlds_sample.path), "--out", str(tmp_path / "stats.json")])
    assert result.exit_code == 0, result.output
    action = json.loads((tmp_path / "stats.json").read_text())["action"]
    mean, std = np.array(action["mean"]), np.array(action["std"])
    # 450 transitions of 50 real episodes vs the published full-dataset figures: each movement dimension's std
    # within a factor of 5 of the published one, means small against it, gripper in [0, 1] with a real spread.
    ratio = std[:6] / np.array(ACT_STD[:6])
    assert np.all((ratio > 0.2) & (ratio < 5)), ratio
    assert np.all(np.abs(mean[:6]) < 3 * np.array(ACT_STD[:6])), mean
    assert action["min"][6] >= 0 and action["max"][6] <= 1 and 0.2 < std[6] < 0.6 and 0.2 < mean[6] < 0.9


def test_stats_are_those_of_the_source_records(rlds_sample: RldsSample, tmp_path: Path) -> None:
    result = CliRunner().invoke(data, ["stats", str(rlds_sample.path), "--out", str(tmp_path / "stats.json")])
    assert result.exit_code == 0, result.output
    action = json.loads((tmp_path / "stats.json").read_text())["action"]
    src = [e for split in ("train", "val") for e in source_episodes(rlds_sample, split)]
    relabeled = np.concatenate([relabel_actions(e["state"], e["action"][:-1]) for e in src])
    np.testing.assert_allclose(action["mean"], relabeled.mean(0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(action["std"], relabeled.std(0), rtol=1e-4, atol=1e-7)
    assert action["min"][6] >= 0 and action["max"][6] <= 1


def test_inspect_reads_the_rlds_directory(rlds_sample: RldsSample) -> None:
    s = rlds_sample
    result = CliRunner().invoke(data, ["inspect", str(s.path.parent), "--im_size", "64"])  # one level above
    assert result.exit_code == 0, result.output
    assert "(rlds)" in result.output and f"64x64x3 ({s.total} trajectories)" in result.output
    for split in ("train", "val"):
        row = next(line for line in result.output.splitlines() if f"bridge_dataset {split}" in line)
        n = s.episodes[split]
        cells = [c.strip() for c in row.split("│") if c.strip()]  # trajectories, frames and labeled per split
        assert cells[1:] == [str(n), str(n * (s.steps - 1)), f"{n}/{n}"], row


def test_cli_resume_overwrite_and_resize(rlds_sample: RldsSample, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["rlds-to-tfrecord", "--input_path", str(rlds_sample.path), "--output_path", str(out),
            "--num_workers", "2"]
    first = CliRunner().invoke(data, [*args, "--im_size", "32"])
    assert first.exit_code == 0, first.output
    files = sorted(out.rglob("*.tfrecord"))
    assert [f.relative_to(out).as_posix() for f in files] == ["bridge_dataset/train/out.tfrecord",
                                                              "bridge_dataset/val/out.tfrecord"]
    t = rlds_sample.steps - 1
    assert next(schema.read_tfrecord(files[0]))["observations/images0"].shape == (t, 32, 32, 3)
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = CliRunner().invoke(data, args)
    assert again.exit_code == 0 and "2 already finished" in again.output
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    redo = CliRunner().invoke(data, [*args, "--overwrite"])
    assert redo.exit_code == 0 and "2 written" in redo.output
    assert next(schema.read_tfrecord(files[0]))["observations/images0"].shape == (t, 64, 64, 3)
    assert not list(out.rglob("*.partial"))


def test_more_than_one_camera_is_refused_with_the_reason(rlds_sample: RldsSample, tmp_path: Path) -> None:
    args = ["rlds-to-tfrecord", "--input_path", str(rlds_sample.path), "--output_path", str(tmp_path / "o")]
    result = CliRunner().invoke(data, [*args, "--cameras", "0,1"])
    assert result.exit_code == 2 and "observations/images0" in result.output
    with pytest.raises(CameraSpecError, match="single index"):
        rlds.parse_cameras("0,2")
    with pytest.raises(RldsFormatError, match=r"'steps/observation/image_7' is missing \(cameras declared: 0, 1"):
        rlds.rlds_to_tfrecord(rlds_sample.path, tmp_path / "o", cameras=(7,))


def test_a_blank_placeholder_camera_is_skipped_and_reported(rlds_sample: RldsSample, tmp_path: Path) -> None:
    report = rlds.rlds_to_tfrecord(rlds_sample.path, tmp_path / "o", cameras=(3,))  # image_3 is all zeros
    assert report.trajectories == 0 and len(report.skipped) == rlds_sample.total
    assert "image_3 is blank in every frame" in report.skipped[0].reason


def test_a_camera_blank_in_some_episodes_skips_only_those(sharded_rlds: RldsSample, tmp_path: Path) -> None:
    report = rlds.rlds_to_tfrecord(sharded_rlds.path, tmp_path / "o", cameras=(2,))  # image_2: even episodes
    assert report.trajectories == 3 + 2 and len(report.skipped) == 3 + 1
    assert all("image_2 is blank in every frame" in s.reason for s in report.skipped)


def test_several_shards_give_one_part_dir_each(rlds_sample: RldsSample, tmp_path: Path) -> None:
    src = Path(shutil.copytree(rlds_sample.path, tmp_path / "src", copy_function=shutil.copyfile))
    shard = src / rlds_sample.shard("train").name
    records = read_records(shard)
    shard.unlink()
    n, half = len(records), len(records) // 2
    for i, part in enumerate((records[:half], records[half:])):
        rewrite_records(src / f"bridge_dataset-train.tfrecord-{i:05d}-of-00002", part)
    info = json.loads((src / "dataset_info.json").read_text())
    info["splits"][0]["shardLengths"] = [str(half), str(n - half)]
    (src / "dataset_info.json").write_text(json.dumps(info))
    report = rlds.rlds_to_tfrecord(src, tmp_path / "o")
    rel = sorted(f.relative_to(tmp_path / "o").as_posix() for f in report.written)
    assert rel == ["bridge_dataset/part00000/train/out.tfrecord", "bridge_dataset/part00000/val/out.tfrecord",
                   "bridge_dataset/part00001/train/out.tfrecord"]
    counts = [half, rlds_sample.episodes["val"], n - half]
    assert [len(list(schema.read_tfrecord(tmp_path / "o" / r))) for r in rel] == counts


def test_the_generated_two_shard_dataset_converts_to_part_dirs(sharded_rlds: RldsSample, tmp_path: Path) -> None:
    report = rlds.rlds_to_tfrecord(sharded_rlds.path, tmp_path / "o")
    rel = sorted(f.relative_to(tmp_path / "o").as_posix() for f in report.written)
    assert rel == [f"bridge_dataset/part0000{i}/{split}/out.tfrecord" for i in (0, 1) for split in ("train", "val")]
    assert [len(list(schema.read_tfrecord(tmp_path / "o" / r))) for r in rel] == [3, 2, 3, 1]
    assert report.trajectories == 9 and report.frames == 9 * 7 and not report.skipped


# ------------------------------------------------------------------------------------------ malformed inputs

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
    _fails(copy, tmp_path / "o", rf"-val\.tfrecord-00000-of-00001: truncated or corrupt TFRecord after {n - 1} records")


def test_shard_cut_between_records(rlds_sample: RldsSample, copy: Path, tmp_path: Path) -> None:
    shard = _val_shard(copy, rlds_sample)
    rewrite_records(shard, read_records(shard)[:-1])
    n = rlds_sample.episodes["val"]
    _fails(copy, tmp_path / "o", rf"{n - 1} episodes, dataset_info\.json says {n}")


def test_not_a_tfds_directory_and_missing_shard(rlds_sample: RldsSample, copy: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputLayoutError, match="not a TFDS/RLDS dataset directory"):
        rlds.rlds_to_tfrecord(tmp_path / "empty", tmp_path / "o")
    (copy / rlds_sample.shard("train").name).unlink()
    with pytest.raises(InputLayoutError, match=r"-train\.tfrecord-00000-of-00001: shard listed in dataset_info"):
        rlds.rlds_to_tfrecord(copy, tmp_path / "o")


# ------------------------------------------------------------------------------------------ training on it

@pytest.fixture(scope="module")
def real_converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    real = real_rlds()
    if real is None:
        pytest.skip(REAL_RLDS_MISSING)
    out = tmp_path_factory.mktemp("rlds_real") / "tf"
    report = rlds.rlds_to_tfrecord(real.path, out, num_workers=2)
    assert report.trajectories == real.total and not report.skipped
    return out


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["gc_bc", "bc"])
def test_short_cpu_training_on_the_converted_sample_learns(algo: str, real_converted: Path, tmp_path: Path) -> None:
    """The shipped example config (tiny encoder, 64x64) on the converted real sample: the training loss falls
    clearly and validation metrics are finite. About a minute per algorithm on 2 CPU cores. Real sample only:
    the loss-drop threshold was measured on it (the generated dataset's actions are random)."""
    converted = real_converted
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


# ------------------------------------------------------------------------------------------ the generator

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
