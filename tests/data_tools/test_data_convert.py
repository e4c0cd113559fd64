"""The conversions end to end on the sample tree: layout, split, quirks, faults, resume, shards, round trips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from bdv2.data_tools import convert, schema
from bdv2.data_tools.cli import data
from bdv2.data_tools.layout import Shard
from bdv2.data_tools.progress import ProgressSink
from bdv2.data_tools.raw import ResizeMode, load_npy

TASKS = ["bridge_data_v2/toykitchen1/open_drawer/00", "bridge_data_v2/toykitchen1/put_carrot_in_pot/00",
         "rss/toykitchen2/sweep_beans/00"]
IM = 16  # tiny images keep the suite fast


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _trajectory_sets(root: Path) -> dict[str, list[str]]:
    """split file -> the source trajectory order, read back through state rows (unique per trajectory)."""
    return {k: [str(r["observations"][0]["state"][:3]) for r in load_npy(root / k)] for k in _files(root)}


def test_raw_to_numpy_tree_and_record_format(raw: Path, tmp_path: Path, n_frames: int) -> None:
    report = convert.raw_to_numpy(raw, tmp_path / "np", im_size=IM)
    assert sorted(_files(tmp_path / "np")) == sorted(f"{t}/{s}/out.npy" for t in TASKS for s in ("train", "val"))
    assert not report.skipped and not report.dropped and report.trajectories == 9
    rec = load_npy(tmp_path / "np" / TASKS[1] / "train" / "out.npy")
    assert len(rec) == 2  # int(3 * 0.9) = 2 train trajectories, 1 val
    first = rec[0]
    assert set(first) == {"observations", "next_observations", "actions", "terminals", "language"}
    assert set(first["observations"][0]) == {"images0", "images1", "state", "time_stamp"}
    assert first["observations"][0]["images0"].shape == (IM, IM, 3)
    assert len(first["observations"]) == len(first["actions"]) == len(first["terminals"]) == n_frames - 1
    assert np.array_equal(first["observations"][1]["images0"], first["next_observations"][0]["images0"])
    # The original saves with np.save and loads with allow_pickle: the same file must work that way.
    plain = np.load(tmp_path / "np" / TASKS[1] / "train" / "out.npy", allow_pickle=True)
    assert plain[0]["language"] == ["put the carrot in the pot"]


def test_split_is_reproducible_and_depends_on_the_seed(raw: Path, tmp_path: Path) -> None:
    def split(seed: int, name: str) -> dict[str, list[str]]:
        convert.raw_to_numpy(raw, tmp_path / name, im_size=8, seed=seed)
        return _trajectory_sets(tmp_path / name)

    assert split(0, "a") == split(0, "b")
    assert any(split(s, f"s{s}") != split(0, "a") for s in (1, 2, 3))


def test_lmdb_and_non_date_dirs_are_skipped_and_reported(raw: Path, tmp_path: Path) -> None:
    task = raw / TASKS[0]
    (task / "2023-01-01_00-00-00_lmdb").mkdir()
    (task / "notes").mkdir()
    (raw / "bridge_data_v2/toykitchen1/export_lmdb/00").mkdir(parents=True)
    report = convert.raw_to_numpy(raw, tmp_path / "np", im_size=8)
    assert report.trajectories == 9 and not report.dropped
    assert any("notes: skipped (not a YYYY-MM-DD_HH-MM-SS dated dir" in n for n in report.notes)
    assert any("lmdb: skipped" in n for n in report.notes)


def test_bad_trajectory_is_skipped_and_listed_and_the_rest_converted(raw: Path, tmp_path: Path, traj: Any) -> None:
    bad = traj(raw, "open_drawer", 1)
    (bad / "images0" / "im_1.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    report = convert.raw_to_tfrecord(raw, tmp_path / "tf", im_size=IM) if _has_tf() else \
        convert.raw_to_numpy(raw, tmp_path / "np", im_size=IM)
    assert [(s.path, "cannot decode" in s.reason) for s in report.skipped] == [(str(bad), True)]
    assert report.trajectories == 8 and len(report.written) == 6


def test_a_task_without_val_is_dropped_with_a_reason_not_half_written(raw: Path, tmp_path: Path) -> None:
    report = convert.raw_to_numpy(raw, tmp_path / "np", im_size=8, train_proportion=1.0)
    assert len(report.dropped) == 3 and "0 val" in report.dropped[0].reason
    assert not (tmp_path / "np").exists()


class _Kill(ProgressSink):
    """Stands in for a kill: raises after `after` trajectories."""

    def __init__(self, after: int) -> None:
        self.left = after

    def advance(self, trajectories: int, frames: int) -> None:
        self.left -= trajectories
        if self.left <= 0:
            raise KeyboardInterrupt


@pytest.mark.parametrize("target", ["numpy", "tfrecord"])
def test_interrupted_run_leaves_no_finished_looking_file_and_resumes(raw: Path, tmp_path: Path, target: str) -> None:
    if target == "tfrecord":
        pytest.importorskip("tensorflow")
    fn = convert.raw_to_numpy if target == "numpy" else convert.raw_to_tfrecord
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        fn(raw, out, im_size=IM, progress=_Kill(after=4))  # task 1 done (3), task 2 interrupted
    finished = _files(out)
    assert len(finished) == 2 and all(k.startswith(TASKS[0]) for k in finished)
    (out / TASKS[2] / "train").mkdir(parents=True)
    (out / TASKS[2] / "train" / f"out.{'npy' if target == 'numpy' else 'tfrecord'}.partial").write_bytes(b"x")
    resumed = fn(raw, out, im_size=IM)
    assert len(resumed.existing) == 2 and len(resumed.written) == 4 and resumed.trajectories == 6
    fn(raw, tmp_path / "clean", im_size=IM)
    assert _files(out) == _files(tmp_path / "clean")  # the .partial was replaced, nothing else differs
    again = fn(raw, out, im_size=IM, overwrite=True)
    assert len(again.written) == 6


def test_shards_are_disjoint_and_together_equal_one_run(raw: Path, tmp_path: Path) -> None:
    whole = convert.raw_to_numpy(raw, tmp_path / "whole", im_size=8)
    for i in range(2):
        convert.raw_to_numpy(raw, tmp_path / "parts", im_size=8, shard=Shard(i, 2))
    parts = [convert.raw_to_numpy(raw, tmp_path / f"p{i}", im_size=8, shard=Shard(i, 2)) for i in range(2)]
    assert not set(parts[0].written) & set(parts[1].written)
    assert _files(tmp_path / "parts") == _files(tmp_path / "whole") and len(whole.written) == 6
    with pytest.raises(ValueError, match="INDEX/COUNT"):
        Shard.parse("2/2")


def _has_tf() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def _read_all(root: Path) -> dict[str, list[dict[str, Any]]]:
    return {str(p.relative_to(root)): list(schema.read_tfrecord(p)) for p in sorted(root.rglob("*.tfrecord"))}


def test_round_trip_numpy_path_and_direct_path_give_identical_trajectories(raw: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    convert.raw_to_numpy(raw, tmp_path / "np", im_size=IM, num_workers=2)  # exercises the worker pool
    convert.numpy_to_tfrecord(tmp_path / "np", tmp_path / "tf_np", im_size=IM)
    convert.raw_to_tfrecord(raw, tmp_path / "tf_exact", im_size=IM, mode=ResizeMode.EXACT)
    convert.raw_to_tfrecord(raw, tmp_path / "tf_draft", im_size=IM, num_workers=2)
    assert _files(tmp_path / "tf_np") == _files(tmp_path / "tf_exact")  # byte for byte
    via_numpy, draft = _read_all(tmp_path / "tf_np"), _read_all(tmp_path / "tf_draft")
    assert via_numpy.keys() == draft.keys() and len(via_numpy) == 6
    for key, trajs in via_numpy.items():
        for a, b in zip(trajs, draft[key], strict=True):
            for feature in schema.FEATURES:
                if feature.endswith("images0"):  # draft decoding: visually equivalent, not identical
                    assert np.abs(a[feature].astype(int) - b[feature]).mean() < 3
                else:
                    assert np.array_equal(a[feature], b[feature])


def test_tfrecord_schema_dtypes_shapes_terminals_truncates(raw: Path, tmp_path: Path, n_frames: int) -> None:
    pytest.importorskip("tensorflow")
    convert.raw_to_tfrecord(raw, tmp_path / "tf", im_size=IM)
    old = _read_all(tmp_path / "tf")[f"{TASKS[2]}/train/out.tfrecord"][0]
    t = n_frames - 2  # latency-shifted trajectory
    assert old["observations/images0"].shape == (t, IM, IM, 3) and old["observations/images0"].dtype == np.uint8
    assert old["observations/state"].shape == (t, 7) and old["observations/state"].dtype == np.float32
    assert old["actions"].shape == (t, 7) and old["actions"].dtype == np.float32
    assert not old["terminals"].any() and old["truncates"].tolist() == [False] * (t - 1) + [True]
    assert old["language"] == [""]
    drawer = _read_all(tmp_path / "tf")[f"{TASKS[0]}/val/out.tfrecord"][0]
    assert drawer["language"] == ["open the drawer", "pull the drawer open"]


def test_numpy_to_tfrecord_checks_im_size(raw: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    convert.raw_to_numpy(raw, tmp_path / "np", im_size=IM)
    report = convert.numpy_to_tfrecord(tmp_path / "np", tmp_path / "tf", im_size=256)
    assert len(report.dropped) == 6 and not report.written
    assert "images are 16x16, not --im_size 256" in report.dropped[0].reason
    assert not list((tmp_path / "tf").rglob("out.tfrecord*"))


def test_cli_accepts_the_original_flags_and_dashes(raw: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(data, ["raw-to-numpy", "--input_path", str(raw), "--output-path", str(tmp_path / "np"),
                                  "--depth", "5", "--num_workers", "1", "--train_proportion", "0.9",
                                  "--im_size", "8"])
    assert result.exit_code == 0, result.output
    assert "6 written" in result.output
    bad = runner.invoke(data, ["raw-to-numpy", "--input_path", str(raw), "--output_path", str(tmp_path / "x"),
                               "--depth", "9"])
    assert bad.exit_code == 1 and "check --depth" in bad.output
    shard = runner.invoke(data, ["raw-to-numpy", "--input_path", str(raw), "--output_path", str(tmp_path / "x"),
                                 "--shard", "3"])
    assert shard.exit_code == 2 and "INDEX/COUNT" in shard.output


def test_cli_sample(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(data, ["sample", "--out", str(tmp_path / "s"), "--trajectories", "2",
                                "--frames", "3"]).exit_code == 0
    assert len(list((tmp_path / "s").rglob("im_0.jpg"))) == 3 * 2 * 3
    assert runner.invoke(data, ["sample", "--out", str(tmp_path / "s")]).exit_code == 1  # not empty


def test_cli_numpy_to_tfrecord_im_size_error(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="numpy-to-tfrecord writes TFRecords with TensorFlow")
    runner = CliRunner()
    assert runner.invoke(data, ["sample", "--out", str(tmp_path / "s"), "--trajectories", "2",
                                "--frames", "3"]).exit_code == 0
    runner.invoke(data, ["raw-to-numpy", "--input-path", str(tmp_path / "s"), "--output-path", str(tmp_path / "np"),
                         "--im-size", "8", "--num-workers", "1"])
    result = runner.invoke(data, ["numpy-to-tfrecord", "--input_path", str(tmp_path / "np"), "--output_path",
                                  str(tmp_path / "tf"), "--num_workers", "1", "--im_size", "256"])
    assert result.exit_code == 1 and "not --im_size 256" in result.output


def test_importing_the_cli_imports_neither_tensorflow_nor_jax() -> None:
    code = "import sys, bdv2.data_tools.cli; print(sorted(m for m in ('tensorflow', 'jax') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_report_types_keep_their_old_import_names() -> None:
    from bdv2.data_tools import progress, rlds

    assert (convert.Report, convert.Skipped, convert.ProgressSink) == (progress.Report, progress.Skipped,
                                                                       progress.ProgressSink)
    for name in ("open_dir", "check_features", "dataset_dirs", "episode_dataset", "rlds_to_tfrecord", "iter_facts",
                 "parse_cameras", "CameraSpecError", "RldsFormatError"):  # what the trainer, bench and CLI use
        assert name in rlds.__all__ and getattr(rlds, name)
