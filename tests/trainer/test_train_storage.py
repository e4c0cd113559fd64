"""Storage faults as a user meets them: a read-only output folder and a file system too small for the run's
checkpoints are refused before launch in one line; a disk that fills up during training is named as such in
the summary. The small and read-only file systems are real tmpfs mounts (root only; skipped otherwise)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tmpfs import mounted

from bdv2 import storage

from . import helpers


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only file system (root ignores permission bits; it cannot write to a read-only mount)."""
    yield from mounted(tmp_path / "ro", "ro,size=1m")


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """A 300 kB file system: less than the tiny run's checkpoints need."""
    yield from mounted(tmp_path / "tiny", "size=300k")


def _train(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bdv2.cli", "train", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=900)


def _config(tfdata: Path, tmp_path: Path, save_dir: Path) -> Path:
    return helpers.write_yaml(tmp_path / "m.yaml", {"global": helpers.base_global(tfdata, save_dir),
                                                    "runs": [{"algo": "gc_bc", "task": "kitchen/put_carrot",
                                                              "name": "r"}]})


def test_storage_checks_name_the_folder_and_the_cause(read_only: Path, tmp_path: Path) -> None:
    assert storage.check_writable(tmp_path / "new" / "runs") is None
    bad = storage.check_writable(read_only / "runs", "save_dir")
    assert bad is not None and bad.folder == str(read_only / "runs")
    assert f"({read_only}, where it would be created): read-only file system" in bad.problem
    assert "choose another save_dir" in bad.fix
    assert storage.check_space(read_only, 10**3) is None
    short = storage.check_space(read_only, 10**7)
    assert short is not None and short.problem == "1.0 MB free, about 10.0 MB needed"


def test_read_only_save_dir_is_one_line_before_launch(tfdata: Path, tmp_path: Path, read_only: Path) -> None:
    out = _train(_config(tfdata, tmp_path, read_only / "runs"))
    assert out.returncode == 1
    text = out.stdout + out.stderr
    assert f"save_dir {read_only / 'runs'}: cannot write here" in text and "read-only file system" in text
    assert "Traceback" not in text and "PermissionError" not in text
    assert "nothing launched" in text


def test_too_small_a_disk_is_refused_before_launch(tfdata: Path, tmp_path: Path, tiny: Path) -> None:
    out = _train(_config(tfdata, tmp_path, tiny / "runs"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert any(x.startswith("plan: host RAM ") and "available: fits" in x for x in out.stdout.splitlines())
    line = next(x for x in out.stdout.splitlines() if x.startswith("✗ save_dir"))
    assert f"{tiny / 'runs'}: " in line and "free, about" in line and "needed" in line
    assert not (tiny / "runs").exists()


@pytest.mark.slow
def test_disk_full_during_training_is_named_in_the_summary(tfdata: Path, tmp_path: Path, tiny: Path) -> None:
    out = _train(_config(tfdata, tmp_path, tiny / "runs"), "--force")
    assert out.returncode == 1
    text = out.stdout + out.stderr
    assert f"✗ r: {tiny / 'runs' / 'r'}: no space left on its file system" in text, text
    assert "no known cause found" not in text and "RESOURCE_EXHAUSTED" not in text
    assert "fix: free space there" in text


@pytest.mark.parametrize(("key", "url", "says"), [
    ("data_root", "nosuch://bucket/bridge", "the installed TensorFlow cannot open nosuch:// URLs"),
    ("save_dir", "nosuch://bucket/runs", "the installed TensorFlow cannot open nosuch:// URLs"),
    ("save_dir", "ram://runs", "orbax (its etils.epath path layer) cannot keep checkpoints under ram://")])
def test_a_remote_url_is_refused_in_one_line_not_made_a_local_folder(tfdata: Path, tmp_path: Path, key: str,
                                                                     url: str, says: str) -> None:
    over = {key: url}
    g = {**helpers.base_global(tfdata, tmp_path / "runs"), **over}
    runs = [{"algo": "gc_bc", "task": "kitchen/put_carrot"}]
    cfg = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "runs": runs})
    out = _train(cfg, *(["--dry-run"] if key == "data_root" else []))
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert says in text and ("mount" in text if "nosuch" in url else "give save_dir as one of those" in text)
    assert "Traceback" not in text
    scheme = url.split("://")[0] + ":"
    assert not Path(scheme).exists() and not (tmp_path / scheme).exists()
