"""collect: metadata from another interpreter (--python) without importing anything heavy."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from bdv2.doctor import diagnose
from bdv2.doctor.errors import CollectError
from bdv2.doctor.matrix import Matrix
from bdv2.doctor.probe.collect import collect, resolve_python


def _fake_dist(site: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"] + [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    (info / "INSTALLER").write_text("pip\n")


@pytest.fixture(scope="module")
def broken_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real venv (no pip, so it takes a second) whose site-packages holds dist-info only."""
    root = tmp_path_factory.mktemp("target") / "venv"
    venv.create(root, with_pip=False)
    site = next((root / "lib").glob("python3*/site-packages"))
    _fake_dist(site, "jax", "0.10.2", ("jaxlib<=0.10.2,>=0.10.1", "numpy>=2.0"))
    _fake_dist(site, "jaxlib", "0.9.2")
    _fake_dist(site, "numpy", "2.4.6")
    # A real pip CUDA wheel layout: nvidia/<component>/lib/<soname>
    lib = site / "nvidia" / "cudnn" / "lib"
    lib.mkdir(parents=True)
    (lib / "libcudnn.so.9").write_bytes(b"")
    # A file that would run code if anything imported the package: the probe must never do that.
    pkg = site / "jax"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise SystemExit('jax was imported')\n")
    return root


def test_collect_reads_another_interpreter(broken_venv: Path, matrix: Matrix) -> None:
    snap = collect(str(broken_venv))
    assert snap.python["is_venv"] and snap.python["prefix"] == str(broken_venv)
    assert snap.dist("jax").version == "0.10.2"  # type: ignore[union-attr]
    assert snap.dist("jaxlib").version == "0.9.2"  # type: ignore[union-attr]
    assert [d.dir.endswith("nvidia/cudnn/lib") for d in snap.nvidia_libs] == [True]
    assert "libcudnn.so.9" in snap.nvidia_libs[0].files
    ids = {f.id for f in diagnose(snap, matrix)}
    assert "jax-jaxlib-lockstep" in ids


def test_doctor_cli_on_another_venv_imports_nothing(broken_venv: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "bdv2.cli", "doctor", "--python", str(broken_venv / "bin" / "python")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr
    assert "jax was imported" not in res.stdout + res.stderr
    assert "jax 0.10.2 needs jaxlib" in res.stdout


def test_bad_python_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CollectError, match="no such interpreter"):
        resolve_python(str(tmp_path / "nope" / "python"))
    (tmp_path / "emptyvenv").mkdir()
    with pytest.raises(CollectError, match="no bin/python inside"):
        resolve_python(str(tmp_path / "emptyvenv"))
    script = tmp_path / "notpython"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    with pytest.raises(CollectError, match="not JSON"):
        collect(str(script))


def test_collect_with_an_environment_sees_what_a_child_with_it_sees(broken_venv: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "XLA_FLAGS": "--xla_gpu_autotune_level=2", "LD_LIBRARY_PATH": "/nowhere/lib"}
    snap = collect(str(broken_venv), env=env)
    assert snap.env["XLA_FLAGS"] == "--xla_gpu_autotune_level=2" and snap.env["LD_LIBRARY_PATH"] == "/nowhere/lib"
    assert [f.dir for f in snap.system.ld_library_path] == ["/nowhere/lib"]
    assert snap.system.xla_flags is not None and snap.system.xla_flags.given == ("xla_gpu_autotune_level",)
    own = collect(None, env=env)  # the doctor's own interpreter, probed in a child with that environment
    assert own.env["XLA_FLAGS"] == "--xla_gpu_autotune_level=2" and own.python["executable"] == sys.executable


def _dist_info(folder: Path, dirname: str, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    d = folder / dirname
    d.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             *(f"Requires-Dist: {r}" for r in requires)]
    (d / "METADATA").write_text("\n".join(lines) + "\n\nA description\n", encoding="utf-8")


def test_the_in_process_probe_lists_distributions_as_importlib_metadata_does(tmp_path: Path) -> None:
    import importlib.metadata
    import zipfile

    from bdv2.doctor.probe import script

    a, b = tmp_path / "a", tmp_path / "b"
    _dist_info(a, "zeta-1.dist-info", "zeta", "1")
    _dist_info(a, "Foo_Bar-1.0.dist-info", "Foo_Bar", "1.0", ("zeta>=1",))
    _dist_info(a, "alpha-3.dist-info", "alpha", "3")
    _dist_info(a, "foo.bar-2.0.dist-info", "foo.bar", "2.0")  # the same name, listed apart: grouped with Foo_Bar
    (a / "empty-1.dist-info").mkdir()  # no METADATA: left out
    (a / "plain-1.dist-info").write_text("a file, not a folder")
    _dist_info(b, "Alpha-4.dist-info", "Alpha", "4")
    path = [str(a), str(tmp_path / "missing"), str(b)]
    assert script._distributions(path, plain=True) == script._distributions(path, plain=False)
    found, shadowed = script._distributions(path, plain=True)
    assert sorted(d["name"] for d in found if d["name"] != "foo.bar") == ["Foo_Bar", "alpha", "zeta"] or \
        sorted(d["name"] for d in found if d["name"] != "Foo_Bar") == ["alpha", "foo.bar", "zeta"]
    assert {d["name"] for d in shadowed} >= {"Alpha"}  # b's alpha is hidden by a's
    here = [p for p in sys.path if p]
    assert script._distributions(here, plain=True) == script._distributions(here, plain=False)
    assert script.own_requires("bdv2") == importlib.metadata.requires("bdv2")
    # what only importlib.metadata reads: an .egg-info, a zip on the path
    (b / "old-1.egg-info").mkdir()
    assert script._plain_distributions(path) is None
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as z:
        z.writestr("zipped-1.dist-info/METADATA", "Name: zipped\nVersion: 1\n")
    assert script._plain_distributions([str(tmp_path / "z.zip")]) is None
    assert script._distributions([str(tmp_path / "z.zip")], plain=True)[0][0]["name"] == "zipped"
