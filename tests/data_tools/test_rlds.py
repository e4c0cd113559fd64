"""The RLDS/TFDS reader and `rlds-to-tfrecord`, on the release-shaped dataset that rlds_sample writes and on the
real 50-episode BridgeData sample (skipped when absent): conversion against the source records, the schema round
trip, inspect/stats, cameras, shards, resume, and a short training run on the real sample. Malformed inputs:
test_rlds_malformed.py; the generator itself: test_rlds_sample.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from bdv2.data_tools import convert, rlds, schema
from bdv2.data_tools.cli import data
from bdv2.data_tools.rlds import CameraSpecError, RldsFormatError
from bdv2.data_tools.trajectory import relabel_actions

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


def test_shards_of_an_array_together_write_exactly_what_one_run_writes(sharded_rlds: RldsSample,
                                                                       tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    rlds.rlds_to_tfrecord(sharded_rlds.path, whole)
    parts = tmp_path / "parts"  # two tasks of a job array writing into one output folder, as on a cluster
    written = []
    for index in (0, 1):
        out = CliRunner().invoke(data, ["rlds-to-tfrecord", "--input_path", str(sharded_rlds.path), "--output_path",
                                        str(parts), "--num_workers", "1", "--shard", f"{index}/2"])
        assert out.exit_code == 0, out.output
        written.append({f for f in parts.rglob("out.tfrecord")} - set().union(*[set(w) for w in written]))
    assert written[0] and written[1]  # each task converted its own part: both splits' shards, split between them
    files = {f.relative_to(whole): f.read_bytes() for f in whole.rglob("*") if f.is_file()}
    assert {f.relative_to(parts): f.read_bytes() for f in parts.rglob("*") if f.is_file()} == files
    assert len(files) == 5  # 2 shards x 2 splits, and source.json
    bad = CliRunner().invoke(data, ["rlds-to-tfrecord", "--input_path", str(sharded_rlds.path), "--output_path",
                                    str(tmp_path / "x"), "--shard", "2/2"])
    assert bad.exit_code == 2 and "INDEX/COUNT" in bad.output


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
        "import json, sys; from pathlib import Path; from bdv2.trainer import config, data, loop\n"
        "data.hide_gpus_from_tf()\n"  # what worker.main does first
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
