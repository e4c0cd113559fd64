"""`bdv2 data` where researchers read it, a batch job's log: every skipped file on one greppable line with its
full path, plain progress lines instead of live bars, and none of TensorFlow's start-up lines unless -v."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from bdv2.console import Ticker, quiet_native_logs

from . import helpers

NATIVE_NOISE = ("oneDNN", "cpu_feature_guard", "absl::InitializeLog", "This TensorFlow binary is optimized")


def _long_dir(tmp_path: Path) -> Path:
    deep = tmp_path / ("a_deliberately_long_directory_name_" * 2) / ("so_paths_exceed_one_hundred_twenty_chars_" * 2)
    deep.mkdir(parents=True)
    assert len(str(deep)) > 120
    return deep


def _convert_to_log(raw: Path, out: Path, log: Path, *extra: str) -> int:
    cmd = [sys.executable, "-P", "-m", "bdv2.data_tools.cli", "raw-to-tfrecord", "--input_path", str(raw),
           "--output_path", str(out), "--depth", "5", "--num_workers", "2", "--im_size", "16", *extra]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    with open(log, "w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=300).returncode


def test_skipped_files_are_one_line_each_with_the_full_path(raw: Path, tmp_path: Path) -> None:
    long_raw = Path(shutil.copytree(raw, _long_dir(tmp_path) / "raw"))
    bad = {helpers.traj(long_raw, "open_drawer", 1): "cannot decode",
           helpers.traj(long_raw, "put_carrot_in_pot", 1): "missing obs_dict.pkl",
           helpers.traj(long_raw, "sweep_beans", 1): "length mismatch"}
    faults = (helpers.truncate_jpeg, helpers.missing_pickle, helpers.drop_frame)
    for path, fault in zip(bad, faults, strict=True):
        fault(path)
    log = tmp_path / "convert.log"
    # exit 1: put_carrot_in_pot's only val trajectory is the broken one, so that task is not written
    assert _convert_to_log(long_raw, tmp_path / "tf", log) == 1, log.read_text()
    lines = log.read_text().splitlines()
    dropped = bad_task = next(p for p in bad if "put_carrot" in str(p)).parents[3]
    assert [line for line in lines if line.startswith("not written: ")] == [
        f"not written: {dropped}: no convertible trajectory left in a split {{'train': 2, 'val': 0}}"]
    assert str(bad_task).endswith("put_carrot_in_pot/00")
    skipped = [line for line in lines if line.startswith("skipped: ")]
    assert len(skipped) == len(bad), lines
    for path, reason in bad.items():
        [line] = [s for s in skipped if s.startswith(f"skipped: {path}: ")]
        assert reason in line
    assert not [line for line in lines if any(n in line for n in NATIVE_NOISE)], lines
    assert any(line.startswith("converting: 9/9 trajectories (100 %)") for line in lines), lines
    assert not any("\r" in line or "\x1b[" in line for line in lines)  # no live bar, no colour codes


def test_verbose_keeps_tensorflow_start_up_lines(raw: Path, tmp_path: Path) -> None:
    log = tmp_path / "convert.log"
    assert _convert_to_log(raw, tmp_path / "tf", log, "-v") == 0, log.read_text()
    # Which start-up lines TensorFlow prints depends on its release and the CPU (oneDNN's notice is absent on
    # some), so any of those the quiet mode removes will do.
    text = log.read_text()
    assert any(n in text for n in NATIVE_NOISE), text


def test_quiet_native_logs_keeps_what_the_user_set() -> None:
    env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    assert quiet_native_logs(env) == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_ENABLE_ONEDNN_OPTS": "0"}
    assert quiet_native_logs({}, verbose=True) == {}


def test_ticker_prints_every_interval_or_every_tenth_with_rate_and_eta() -> None:
    now = [0.0]
    out = io.StringIO()
    ticker = Ticker(Console(file=out, width=400), "converting", 100, "trajectories", interval_s=10,
                    clock=lambda: now[0])
    for done in range(1, 6):  # 5 % in 5 s: nothing yet
        now[0] = float(done)
        ticker.update(done)
    assert out.getvalue() == ""
    now[0] = 10.0
    ticker.update(6)  # 10 s passed
    now[0] = 11.0
    ticker.update(16)  # another 10 %
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("converting: 6/100 trajectories (6 %), 0.60 trajectories/s, ETA 2 min 37 s")
    assert lines[1].startswith("converting: 16/100 trajectories (16 %)") and len(lines) == 2
