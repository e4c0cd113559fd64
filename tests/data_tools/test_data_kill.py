"""A real SIGKILL in the middle of raw-to-tfrecord: no finished-looking file is half written, and a re-run
completes the output exactly as an uninterrupted run writes it."""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bdv2.data_tools.sample import write_sample


def _convert(raw: Path, out: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-P", "-m", "bdv2.data_tools.cli", "raw-to-tfrecord", "--input_path", str(raw),
           "--output_path", str(out), "--depth", "5", "--num_workers", "2", "--im_size", "32"]
    # start_new_session: the kill reaches the worker processes too, as a scheduler's SIGKILL would.
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.slow
def test_sigkill_leaves_no_finished_looking_file_and_rerun_completes(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    raw = write_sample(tmp_path / "raw", n_trajectories=6, n_frames=12, n_cameras=1)
    clean = tmp_path / "clean"
    assert _convert(raw, clean).wait(timeout=300) == 0

    out = tmp_path / "killed"
    proc = _convert(raw, out)
    deadline = time.monotonic() + 120
    # Kill as soon as the first output (finished or partial) exists: mid-run, not before or after it.
    while time.monotonic() < deadline and proc.poll() is None and not any(out.rglob("*.tfrecord*")):
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the conversion finished before it could be killed")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    finished = sorted(out.rglob("out.tfrecord"))
    for path in finished:  # every file under the finished name is whole: every record parses
        n = sum(1 for _ in tf.data.TFRecordDataset(str(path)))
        assert n > 0, path
    expected = sorted(clean.rglob("out.tfrecord"))
    assert len(finished) < len(expected), "the kill came too late to test anything"

    assert _convert(raw, out).wait(timeout=300) == 0
    for path in expected:
        twin = out / path.relative_to(clean)
        assert twin.exists() and filecmp.cmp(path, twin, shallow=False), twin
    assert not list(out.rglob("*.partial"))
