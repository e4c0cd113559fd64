"""A real SIGKILL in the middle of raw-to-tfrecord: no finished-looking file is half written, and a re-run
completes the output exactly as an uninterrupted run writes it.

Deterministic: one JPEG of the second task is replaced by a named pipe, so the worker that opens it blocks
until the test kills the run. At that moment the first task is finished, the second is half written (its
train split under the temporary name) and the third not started, however fast the machine is."""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bdv2.data_tools import layout
from bdv2.data_tools.sample import write_sample

DEPTH = 5


def _convert(raw: Path, out: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-P", "-m", "bdv2.data_tools.cli", "raw-to-tfrecord", "--input_path", str(raw),
           "--output_path", str(out), "--depth", str(DEPTH), "--num_workers", "2", "--im_size", "32"]
    # start_new_session: the kill reaches the worker processes too, as a scheduler's SIGKILL would.
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        assert proc.poll() is None, f"the conversion exited ({proc.returncode}) although a frame never arrived"
        time.sleep(0.02)
    assert condition(), "the conversion did not reach the blocked frame"


@pytest.mark.slow
def test_sigkill_leaves_no_finished_looking_file_and_rerun_completes(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    raw = write_sample(tmp_path / "raw", n_trajectories=6, n_frames=6, n_cameras=1)
    clean = tmp_path / "clean"
    assert _convert(raw, clean).wait(timeout=300) == 0
    expected = sorted(clean.rglob("out.tfrecord"))

    tasks = layout.find_raw_tasks(raw, DEPTH)
    assert len(tasks) == 3
    first, second = (layout.output_rel(t, DEPTH) for t in tasks[:2])
    # The last trajectory of the second task, as the CLI splits it (train first, then val): its last frame.
    last_traj = layout.plan_raw_task(tasks[1], raw, DEPTH, 0.9, 0).val[-1][0]
    frame = last_traj / "images0" / "im_5.jpg"
    jpeg = frame.read_bytes()
    frame.unlink()
    os.mkfifo(frame)

    out = tmp_path / "killed"
    proc = _convert(raw, out)
    partial = out / second / "train" / ("out.tfrecord" + layout.TMP_SUFFIX)
    _wait_for(lambda: partial.exists() and all((out / first / s / "out.tfrecord").exists() for s in layout.SPLITS),
              proc)
    time.sleep(0.5)  # the run is blocked on the pipe; nothing more can happen
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    finished = sorted(out.rglob("out.tfrecord"))
    assert [f.relative_to(out) for f in finished] == [first / s / "out.tfrecord" for s in layout.SPLITS]
    for path in finished:  # every file under the finished name is whole: every record parses
        n = sum(1 for _ in tf.data.TFRecordDataset(str(path)))
        assert n > 0, path
    assert partial.exists() and len(finished) < len(expected)

    frame.unlink()
    frame.write_bytes(jpeg)
    assert _convert(raw, out).wait(timeout=300) == 0
    for path in expected:
        twin = out / path.relative_to(clean)
        assert twin.exists() and filecmp.cmp(path, twin, shallow=False), twin
    assert not list(out.rglob("*.partial"))
