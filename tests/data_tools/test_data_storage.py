"""A converter's output on a read-only or full file system, as a user meets it: one line naming the folder and
what to do, no traceback; the finished outputs stay and no unfinished file is left (real tmpfs mounts)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tmpfs import mounted


def _convert(raw: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bdv2.cli", "data", "raw-to-tfrecord", "--input_path", str(raw),
                           "--output_path", str(out), "--depth", "5", "--num_workers", "1"],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    yield from mounted(tmp_path / "ro", "ro,size=1m")


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """400 kB: less than the sample's TFRecords at 256 px."""
    yield from mounted(tmp_path / "tiny", "size=400k")


def test_read_only_output_is_one_line(sample_master: Path, read_only: Path) -> None:
    out = _convert(sample_master, read_only / "tfr")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"Error: --output_path {read_only / 'tfr'}: cannot write here ({read_only}, where it would be created): "
        "read-only file system; make it writable (a read-write mount, `chmod u+w`, `chattr -i`) or choose another "
        "--output_path"]


def test_full_disk_is_one_line_and_leaves_no_partial_file(sample_master: Path, tiny: Path) -> None:
    out = _convert(sample_master, tiny / "tfr")
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: --output_path {tiny / 'tfr'}: no space left on its file system"), out.stderr
    assert "then re-run the same command" in last
    assert "Traceback" not in out.stderr and "ResourceExhaustedError" not in out.stderr
    assert not list(tiny.rglob("*.partial"))
