"""The built wheel carries compat_matrix.toml and works on its own in a fresh venv."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_doctor(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheel = next(dist.glob("bdv2-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bdv2/doctor/compat_matrix.toml" in names and "bdv2/doctor/report_schema.json" in names
    packaged = zipfile.ZipFile(wheel).read("bdv2/doctor/compat_matrix.toml").decode()
    assert packaged == (ROOT / "compat_matrix.toml").read_text()
    assert not any(n.startswith(("doctor/", "trainer/", "data_tools/")) for n in names)  # no generic top-level names

    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=600)
    if inst.returncode != 0 and "No matching distribution" in inst.stderr:
        pytest.skip(f"package index unreachable: {inst.stderr[-300:]}")
    assert inst.returncode == 0, inst.stderr[-2000:]
    res = subprocess.run([str(env_dir / "bin" / "bdv2"), "doctor", "--json"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    doc = json.loads(res.stdout)
    assert res.returncode == 0 and doc["exit_code"] == 0, doc["findings"]
    assert doc["target"]["executable"].startswith(str(env_dir))
    # pip install . gives the doctor alone: nothing heavy came along.
    frozen = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True).stdout.lower()
    assert "jax" not in frozen and "tensorflow" not in frozen and "numpy" not in frozen
