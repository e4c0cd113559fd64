"""The built wheel on its own: what a base install (no extras) gives, shell completion, and the doctor's
version moves and `matrix verify` run from a wheel-installed bdv2 in fresh venvs.

The wheel is built once per session (``wheel``); venvs that several tests share are built once per module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def sh(*argv: str | Path, timeout: float = 600, env: dict[str, str] | None = None,
       cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False,
                          env=env, cwd=cwd)


def ok(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return res.stdout


def fresh_venv(path: Path, *pip_args: str | Path) -> Path:
    venv.create(path, with_pip=True)
    if pip_args:
        res = sh(path / "bin" / "python", "-m", "pip", "install", "-q", *pip_args, timeout=1800)
        if res.returncode != 0 and "No matching distribution" in res.stderr:
            pytest.skip(f"package index unreachable: {res.stderr[-300:]}")
        ok(res)
    return path


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    ok(sh(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT))
    return next(dist.glob("bdv2-*.whl"))


@pytest.fixture(scope="module")
def base(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel and no extras: click, rich, packaging, PyYAML only."""
    return fresh_venv(tmp_path_factory.mktemp("base") / "venv", wheel)


def test_shell_completion_scripts_are_produced() -> None:
    # click's completion (https://click.palletsprojects.com/en/stable/shell-completion/), as README shows it.
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete --no-files")):
        res = sh(BIN / "bdv2", env={**os.environ, "_BDV2_COMPLETE": f"{shell}_source"})
        assert res.returncode == 0 and marker in res.stdout and "_BDV2_COMPLETE" in res.stdout, (shell, res.stdout)
    words = sh(BIN / "bdv2", env={**os.environ, "_BDV2_COMPLETE": "bash_complete", "COMP_WORDS": "bdv2 doc",
                                   "COMP_CWORD": "1"}).stdout
    assert "doctor" in words


@pytest.mark.slow
def test_wheel_carries_the_matrix_and_no_generic_top_level_names(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "bdv2/doctor/compat_matrix.toml" in names and "bdv2/doctor/report_schema.json" in names
    assert "bdv2/doctor/api/api_history.json.gz" in names  # --log and --deep read the API history from it
    assert "bdv2/doctor/api/tf1_names.json" in names  # --log names TensorFlow 1.x code on TensorFlow 2 from it
    assert "bdv2/doctor/api/keras1_names.json" in names  # and Keras 1 keywords under a later Keras
    assert "bdv2/doctor/api/wheel_pythons.json" in names  # and a pinned release's Pythons on PyPI
    assert "bdv2/doctor/log_families.toml" in names  # --log's families, variants and renames
    assert "bdv2/data_tools/releases.toml" in names  # bdv2 data identify reads the known releases from it
    packaged = zipfile.ZipFile(wheel).read("bdv2/doctor/compat_matrix.toml").decode()
    assert packaged == (ROOT / "compat_matrix.toml").read_text()
    assert not any(n.startswith(("doctor/", "trainer/", "data_tools/")) for n in names)


@pytest.mark.slow
def test_base_install_runs_the_doctor_and_the_matrix_commands(base: Path, tmp_path: Path) -> None:
    bdv2 = base / "bin" / "bdv2"
    frozen = ok(sh(base / "bin" / "python", "-m", "pip", "freeze")).lower()
    assert "jax" not in frozen and "tensorflow" not in frozen and "numpy" not in frozen
    assert "bdv2" in ok(sh(bdv2, "--help", cwd=tmp_path)) and "0.1.0" in ok(sh(bdv2, "--version", cwd=tmp_path))
    res = sh(bdv2, "doctor", "--json", cwd=tmp_path)
    doc = json.loads(res.stdout)
    assert res.returncode == 0 and doc["exit_code"] == 0, doc["findings"]
    assert doc["target"]["executable"].startswith(str(base))
    other = fresh_venv(tmp_path / "other")
    res = sh(bdv2, "doctor", "--python", other, "--save-snapshot", tmp_path / "s.json", cwd=tmp_path)
    assert res.returncode in (0, 1) and str(other) in res.stdout and "Traceback" not in res.stderr, res.stderr
    assert sh(bdv2, "doctor", "--snapshot", tmp_path / "s.json", cwd=tmp_path).returncode in (0, 1)
    (tmp_path / "train.log").write_text("ModuleNotFoundError: No module named 'tf_keras'\n")
    res = sh(bdv2, "doctor", "--log", tmp_path / "train.log", cwd=tmp_path)
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr
    assert "cpu-current" in ok(sh(bdv2, "matrix", "list", cwd=tmp_path))
    assert "jax==0.10.2" in ok(sh(bdv2, "matrix", "show", "cpu-current", cwd=tmp_path))
    assert "numpy==2.4.6" in ok(sh(bdv2, "matrix", "constraints", "cpu-current", cwd=tmp_path)).splitlines()
    assert sh(bdv2, "doctor", "--python", tmp_path / "nope", cwd=tmp_path).returncode == 3


@pytest.mark.slow
@pytest.mark.parametrize("room", ["data", "train"])
def test_base_install_prints_the_rooms_help(base: Path, tmp_path: Path, room: str) -> None:
    res = sh(base / "bin" / "bdv2", room, "--help", cwd=tmp_path)
    assert res.returncode == 0 and "Usage:" in res.stdout, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr


@pytest.mark.slow
def test_base_install_names_the_data_extra_when_it_is_needed(base: Path, tmp_path: Path) -> None:
    res = sh(base / "bin" / "bdv2", "data", "sample", "--out", tmp_path / "X", cwd=tmp_path)
    text = (res.stdout + res.stderr).strip()
    assert res.returncode == 2 and "Traceback" not in text, text
    assert len(text.splitlines()) == 1 and "[data]" in text, text


# -- version moves by the wheel-installed doctor --------------------------------------------------------
# A light, real breakage: ml-dtypes 0.6.0 needs numpy >= 2 (its Requires-Dist), numpy 1.26.4 installed
# beside it with --no-deps. The nearest row (cpu-current) moves numpy to 2.4.6.

BREAK = ("ml-dtypes==0.6.0",)
OLD_NUMPY = "numpy==1.26.4"


def numpy_version(python: Path) -> str:
    return ok(sh(python, "-c", "import importlib.metadata as m; print(m.version('numpy'))")).strip()


@pytest.mark.slow
def test_fix_repairs_a_uv_venv_with_uv(base: Path, tmp_path: Path) -> None:
    ok(sh(base / "bin" / "python", "-m", "pip", "install", "-q", "uv"))  # beside the doctor's interpreter
    uv = base / "bin" / "uv"
    target = tmp_path / "uvvenv"
    ok(sh(uv, "venv", "-q", "--python", sys.executable, target))
    assert not (target / "bin" / "pip").exists()
    ok(sh(uv, "pip", "install", "-q", "--python", target / "bin" / "python", *BREAK))
    ok(sh(uv, "pip", "install", "-q", "--python", target / "bin" / "python", "--no-deps", OLD_NUMPY))
    bdv2 = base / "bin" / "bdv2"
    assert sh(bdv2, "doctor", "--python", target, cwd=tmp_path).returncode == 1
    res = sh(bdv2, "doctor", "--python", target, "--fix", "--yes", cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "numpy: 1.26.4 -> 2.4.6" in out and f"{uv} pip install --python {target}/bin/python -c " in out, out
    plan_and_steps = out[out.index("Repair plan"):]
    assert "-m pip " not in plan_and_steps, out  # the plan, the preview and the steps all speak uv here
    assert numpy_version(target / "bin" / "python") == "2.4.6"
    assert sh(bdv2, "doctor", "--python", target, cwd=tmp_path).returncode == 0


@pytest.mark.slow
def test_fix_does_not_silently_replace_condas_packages(base: Path, tmp_path: Path) -> None:
    target = fresh_venv(tmp_path / "condaish", *BREAK)
    ok(sh(target / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", OLD_NUMPY))
    # What conda leaves behind: a conda-meta/ record per package, and INSTALLER saying conda
    # (https://packaging.python.org/en/latest/specifications/recording-installed-packages/#the-installer-file).
    (target / "conda-meta").mkdir()
    (target / "conda-meta" / "numpy-1.26.4-py311h0_0.json").write_text("{}")
    info = next((target / "lib").glob("python3.*/site-packages/numpy-1.26.4.dist-info"))
    (info / "INSTALLER").write_text("conda\n")
    bdv2 = base / "bin" / "bdv2"
    res = sh(bdv2, "doctor", "--python", target, "--fix", "--yes", cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "conda installed what pip would replace: numpy: 1.26.4 -> 2.4.6" in out, out
    assert f'conda install -p {target} "numpy=2.4.6"' in out and "--allow-conda-overwrite" in out
    assert numpy_version(target / "bin" / "python") == "1.26.4"  # untouched
    res = sh(bdv2, "doctor", "--python", target, "--fix", "--yes", "--allow-conda-overwrite", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert numpy_version(target / "bin" / "python") == "2.4.6"


@pytest.mark.slow
def test_matrix_verify_from_the_wheel_installed_with_train(wheel: Path, tmp_path: Path) -> None:
    env = fresh_venv(tmp_path / "trainvenv", f"{wheel}[train]")
    direct = json.loads(ok(sh(env / "bin" / "python", "-c", "from importlib.metadata import distribution as d; "
                                                          "print(d('bdv2').read_text('direct_url.json'))",
                              cwd=tmp_path)))
    assert direct["url"] == wheel.as_uri() and "archive_info" in direct
    res = sh(env / "bin" / "bdv2", "matrix", "verify", "cpu-current", "--workdir", tmp_path / "work", cwd=tmp_path,
             timeout=3000)
    out = res.stdout + res.stderr
    assert f"bdv2 0.1.0 from local wheel or sdist: {wheel}" in out, out
    assert res.returncode == 0 and "cpu-current: PASS" in out, out
