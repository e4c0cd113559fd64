"""The real `bdv2 doctor` against fake GPU machines: recorded cu12/cu13 wheel sets, a shadowing
LD_LIBRARY_PATH, an old driver, a driver/module mismatch, and a system nvlink older than the pip ptxas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bdv2.doctor import diagnose
from bdv2.doctor.matrix import Matrix
from bdv2.doctor.probe.facts import SystemFacts
from bdv2.doctor.probe.snapshot import LibDir
from bdv2.doctor.probe.system import collect_system, known_xla_flags, parse_ldconfig, scan_lib_dir

from . import helpers
from .gpu_fakes import (
    PROC_535,
    PROC_OPEN_550,
    SMI_A100_535,
    SMI_H100_570,
    SMI_MISMATCH,
    SMI_V100_470,
    make_system,
    make_target,
)


@pytest.fixture(scope="module")
def cu12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_target(tmp_path_factory.mktemp("cu12") / "venv", "gpu-cu12-wheels.json")


@pytest.fixture(scope="module")
def cu13(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_target(tmp_path_factory.mktemp("cu13") / "venv", "gpu-cu13-wheels.json")


def doctor(target: Path, env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any]]:
    res = subprocess.run([sys.executable, "-m", "bdv2.cli", "doctor", "--python", str(target), "--json", *extra],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def by_id(doc: dict[str, Any], fid: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["id"] == fid]


def ops(f: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(o["op"], o["name"], o["value"]) for o in f["fix"]["env_ops"]]


def test_cu12_wheels_on_a_good_driver_are_healthy(cu12: Path, tmp_path: Path) -> None:
    env, _ = make_system(tmp_path, smi=SMI_H100_570, proc="NVRM version: NVIDIA UNIX x86_64 Kernel Module  "
                         "570.124.06  Wed Feb 26 2025\n")
    code, doc = doctor(cu12, env)
    assert code == 0, [f["title"] for f in doc["findings"]]


def test_cu13_wheels_need_driver_580(cu13: Path, tmp_path: Path) -> None:
    env, _ = make_system(tmp_path, smi=SMI_A100_535, proc=PROC_535)
    code, doc = doctor(cu13, env)
    assert code == 1
    f = by_id(doc, "nvidia-driver")
    assert any("too old for CUDA 13" in x["title"] for x in f), f
    assert any("jax[cuda12]" in c for x in f for c in x["fix"]["commands"])


def test_old_driver_for_cuda12(cu12: Path, tmp_path: Path) -> None:
    env, _ = make_system(tmp_path, smi=SMI_V100_470)
    code, doc = doctor(cu12, env)
    assert code == 1
    titles = [f["title"] for f in by_id(doc, "nvidia-driver")]
    assert titles == ["driver 470.82.01 is too old for CUDA 12 (needs >= 525.60.13)"]  # one cause, said once


@pytest.mark.parametrize(("smi", "cuda", "cmd"), [
    ("550.54.14, NVIDIA L4, 8.9", "12.4", None),
    ("560.35.03, NVIDIA GeForce RTX 4090, 8.9", "12.6", '"nvidia-cuda-nvcc-cu12==12.6.*"'),
])
def test_driver_older_than_pip_ptxas(cu12: Path, tmp_path: Path, smi: str, cuda: str, cmd: str | None) -> None:
    env, _ = make_system(tmp_path, smi=smi)
    code, doc = doctor(cu12, env)
    f = [x for x in by_id(doc, "nvidia-driver") if "older than ptxas 12.9" in x["title"]]
    assert code == 0 and f and f[0]["severity"] == "warning" and f"CUDA {cuda}" in f[0]["title"]
    assert (cmd is None and not f[0]["fix"]["commands"]) or any(cmd in c for c in f[0]["fix"]["commands"])


def test_kernel_module_mismatch(cu12: Path, tmp_path: Path) -> None:
    env, _ = make_system(tmp_path, smi=SMI_MISMATCH, proc=PROC_OPEN_550)
    code, doc = doctor(cu12, env)
    assert code == 1
    f = by_id(doc, "nvidia-driver")
    assert any("kernel module and the user-space driver differ" in x["title"] for x in f)
    assert any("Driver/library version mismatch" in e for x in f for e in x["evidence"])


def test_shadowing_ld_library_path_on_a_preloading_jax(cu12: Path, tmp_path: Path) -> None:
    env, _ = make_system(tmp_path, smi=SMI_H100_570, lib_dirs={
        "usr/local/cuda-12.4/lib64": ["libcudnn.so.9 -> libcudnn.so.9.1.0", "libcublas.so.12 -> libcublas.so.12.4.5.8",
                                      "libcudart.so.12"],
    })
    _, doc = doctor(cu12, env)
    f = by_id(doc, "cuda-lib-shadowing")
    assert f and f[0]["severity"] == "warning" and f[0]["area"] == "cuda"
    assert "libcudnn" in f[0]["title"] and "libcublas" in f[0]["title"]
    assert any("libcudnn.so.9 (9.1.0)" in e for e in f[0]["evidence"])
    assert ops(f[0]) == [("remove", "LD_LIBRARY_PATH", str(tmp_path / "usr/local/cuda-12.4/lib64"))]


def test_the_guides_own_injection_is_not_needed_on_new_jax(cu12: Path, tmp_path: Path) -> None:
    site = next((cu12 / "lib").glob("python3*/site-packages"))
    env, _ = make_system(tmp_path, smi=SMI_H100_570)
    env["LD_LIBRARY_PATH"] = f"{site}/nvidia/cudnn/lib:{site}/nvidia/cublas/lib"
    code, doc = doctor(cu12, env)
    assert code == 0
    f = by_id(doc, "cuda-lib-shadowing")
    assert f and f[0]["severity"] == "info" and "does not need" in f[0]["title"]


def test_system_nvlink_older_than_pip_ptxas(cu12: Path, tmp_path: Path) -> None:
    env, _ = make_system(tmp_path, smi=SMI_H100_570, tools={"nvlink": "12.4", "ptxas": "12.4"})
    code, doc = doctor(cu12, env)
    assert code == 1
    f = by_id(doc, "cuda-tools")
    assert f and "newer than toolkit (129 vs 124)" in f[0]["title"]
    assert ops(f[0]) == [("set", "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=1")]


def test_deprecated_and_hiding_env_vars(cu12: Path, tmp_path: Path) -> None:
    env, _ = make_system(tmp_path, smi=SMI_H100_570)
    env.update(JAX_PLATFORM_NAME="gpu", CUDA_VISIBLE_DEVICES="", XLA_PYTHON_CLIENT_MEM_FRACTION="75")
    code, doc = doctor(cu12, env)
    titles = {f["title"]: f for rid in ("jax-platform-name-deprecated", "cuda-visible-devices-hides-gpus",
                                        "mem-fraction-invalid") for f in by_id(doc, rid)}
    assert code == 1
    dep = next(f for t, f in titles.items() if "JAX_PLATFORM_NAME" in t)
    assert ("unset", "JAX_PLATFORM_NAME", "") in ops(dep) and ("set", "JAX_PLATFORMS", "gpu") in ops(dep)
    assert any("hides every GPU" in t for t in titles)
    assert any("MEM_FRACTION='75'" in t for t in titles)


def test_gpu_without_cuda_jax(tmp_path: Path) -> None:
    target = tmp_path / "cpu-venv"
    make_target(target, "gpu-cu12-wheels.json")
    site = next((target / "lib").glob("python3*/site-packages"))
    for info in site.glob("jax_cuda12_*.dist-info"):
        for f in info.iterdir():
            f.unlink()
        info.rmdir()
    env, _ = make_system(tmp_path / "sys", smi=SMI_A100_535, proc=PROC_535)
    code, doc = doctor(target, env)
    assert code == 1
    f = [x for x in by_id(doc, "nvidia-driver") if "has no CUDA backend" in x["title"]]
    assert f and any('jax[cuda12]==0.10.2' in c for c in f[0]["fix"]["commands"])


OLD_DEPENDENCIES = ["libnvJitLink.so.12 -> libnvJitLink.so.12.4.127", "libcublasLt.so.12 -> libcublasLt.so.12.4.5.8"]


@pytest.mark.parametrize("jax_version", ["0.4.35", "0.6.2", "0.10.2"])
def test_older_dependency_libraries_on_ld_library_path_are_an_error(tmp_path: Path, jax_version: str) -> None:
    """libcusparse loads libnvJitLink and libcublas loads libcublasLt through their RUNPATH, after LD_LIBRARY_PATH,
    under an RPATH jaxlib (0.4.35) and a preloading one (0.6.2+) alike: an older copy there is what gets loaded."""
    target = make_target(tmp_path / "venv", "gpu-cu12-wheels.json", jax_version)
    env, _ = make_system(tmp_path / "sys", smi=SMI_H100_570, lib_dirs={"usr/local/cuda-12.4/lib64": OLD_DEPENDENCIES})
    code, doc = doctor(target, env)
    folder = str(tmp_path / "sys" / "usr/local/cuda-12.4/lib64")
    errs = [f for f in by_id(doc, "cuda-lib-shadowing") if f["severity"] == "error"]
    assert code == 1 and len(errs) == 1, [(f["severity"], f["title"]) for f in doc["findings"]]
    assert folder in errs[0]["title"] and "libnvJitLink" in errs[0]["title"] and "libcublasLt" in errs[0]["title"]
    assert any("libnvJitLink.so.12 (12.4.127)" in e for e in errs[0]["evidence"])
    assert ops(errs[0]) == [("remove", "LD_LIBRARY_PATH", folder)]


def test_a_newer_dependency_library_on_ld_library_path_is_only_a_warning(tmp_path: Path) -> None:
    target = make_target(tmp_path / "venv", "gpu-cu12-wheels.json", "0.6.2")
    env, _ = make_system(tmp_path / "sys", smi=SMI_H100_570, lib_dirs={
        "opt/cuda-12.9/lib64": ["libnvJitLink.so.12 -> libnvJitLink.so.12.9.86"]})
    _, doc = doctor(target, env)
    found = by_id(doc, "cuda-lib-shadowing")
    assert found and all(f["severity"] == "warning" for f in found), found


def test_pytorch_cuda_wheels_beside_a_cpu_jax_give_no_cudnn_error(tmp_path: Path) -> None:
    """The recorded cu12 wheel set without jax's plugin (as PyTorch installs them) and torch: jax is on the CPU."""
    target = make_target(tmp_path / "venv", "gpu-cu12-wheels.json")
    site = next((target / "lib").glob("python3*/site-packages"))
    for info in site.glob("jax_cuda12_*.dist-info"):
        for f in info.iterdir():
            f.unlink()
        info.rmdir()
    torch = site / "torch-2.7.1.dist-info"
    torch.mkdir()
    (torch / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.7.1\n")
    env, _ = make_system(tmp_path / "sys", smi=SMI_H100_570)
    _, doc = doctor(target, env)
    assert not [f["id"] for f in doc["findings"] if "cudnn" in f["id"] or f["id"] == "cuda-libs-missing"]
    assert not [f for f in doc["findings"] if f["area"] == "cuda" and f["severity"] == "error"]


# -- the same checks as pure functions of a Snapshot ---------------------------------------------------

SITE = "/venv/lib/python3.11/site-packages"


def test_runpath_jaxlib_is_shadowed_by_ld_library_path(matrix: Matrix) -> None:
    # The guide's era: jaxlib 0.4.13+cuda12.cudnn89 finds the wheels through a RUNPATH.
    snap = helpers.make_snap(
        {"jax": "0.4.13", "jaxlib": "0.4.13+cuda12.cudnn89", "nvidia-cudnn-cu12": "8.9.7.29"},
        nvidia_libs=(LibDir(f"{SITE}/nvidia/cudnn/lib", ("libcudnn.so.8", "libcudnn_ops_infer.so.8")),),
        system=SystemFacts.from_dict({"ld_library_path": [{"dir": "/usr/local/cuda-11.8/lib64", "libs": [
            {"stem": "libcudnn", "name": "libcudnn.so.8", "version": "8.6.0",
             "path": "/usr/local/cuda-11.8/lib64/libcudnn.so.8"}]}]}),
    )
    f = next(x for x in diagnose(snap, matrix) if x.id == "cuda-lib-shadowing")
    assert f.severity.value == "error" and "shadows the pip CUDA wheels" in f.title
    assert [(o.op.value, o.value) for o in f.fix.env_ops] == [("prepend", f"{SITE}/nvidia/cudnn/lib")]  # type: ignore[union-attr]


def test_plugin_without_any_cudnn(matrix: Matrix) -> None:
    plugin = {"jax": "0.10.2", "jaxlib": "0.10.2", "jax-cuda12-plugin": "0.10.2", "jax-cuda12-pjrt": "0.10.2"}
    snap = helpers.make_snap(plugin, system=SystemFacts.from_dict({"ldconfig": []}))
    found = [x for x in diagnose(snap, matrix) if x.id == "cuda-libs-missing"]
    assert found and "fall back to the CPU" in found[0].title
    snap = helpers.make_snap(plugin,
                     system=SystemFacts.from_dict({"ldconfig": [
                         {"stem": "libcudnn", "name": "libcudnn.so.9", "version": "9.1.0",
                          "path": "/usr/lib/x86_64-linux-gnu/libcudnn.so.9"}]}))
    found = [x for x in diagnose(snap, matrix) if x.id == "cuda-libs-missing"]
    assert found and "older than the 9.8" in found[0].title


def test_unknown_xla_flag_found_in_the_jaxlib_binary(tmp_path: Path, matrix: Matrix) -> None:
    lib = tmp_path / "site" / "jaxlib"
    lib.mkdir(parents=True)
    (lib / "_jax.so").write_bytes(b"\x00xla_gpu_force_compilation_parallelism\x00xla_gpu_autotune_level\x00")
    known, scanned = known_xla_flags([str(tmp_path / "site")], "")
    assert {"xla_gpu_force_compilation_parallelism", "xla_gpu_autotune_level"} <= known and scanned.endswith("_jax.so")
    env = {"XLA_FLAGS": "--xla_gpu_force_compilation_parallelism=1 --xla_gpu_enable_bogus=true", "PATH": "/nonexistent"}
    system = collect_system(env, [str(tmp_path / "site")], runner=lambda cmd: (127, ""), root=tmp_path)
    assert system.xla_flags is not None and system.xla_flags.unknown == ("xla_gpu_enable_bogus",)
    snap = helpers.make_snap({"jax": "0.10.2", "jaxlib": "0.10.2"}, env=env, system=system)
    f = next(x for x in diagnose(snap, matrix) if x.id == "xla-flags-unknown")
    assert "xla_gpu_enable_bogus" in f.title and f.severity.value == "error"
    assert [(o.op.value, o.value) for o in f.fix.env_ops] == [  # type: ignore[union-attr]
        ("set", "--xla_gpu_force_compilation_parallelism=1")]


def test_library_versions_come_from_names_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "libcudnn.so.8.9.7").write_bytes(b"")
    (tmp_path / "libcudnn.so.8").symlink_to("libcudnn.so.8.9.7")
    (tmp_path / "libfoo.so.1").write_bytes(b"")
    libs = {x.name: x.version for x in scan_lib_dir(str(tmp_path))}
    assert libs == {"libcudnn.so.8": "8.9.7", "libcudnn.so.8.9.7": "8.9.7"}
    text = (f"1204 libs found in cache `/etc/ld.so.cache'\n\tlibcudnn.so.8 (libc6,x86-64) => {tmp_path}/libcudnn.so.8\n"
            "\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n")
    assert [(x.name, x.version) for x in parse_ldconfig(text)] == [("libcudnn.so.8", "8.9.7")]


def test_fix_plan_on_a_fake_gpu_machine(cu12: Path, tmp_path: Path) -> None:
    """The --fix plan for the guide's nvlink case plus a shadowing CUDA folder, shown and not applied."""
    env, _ = make_system(tmp_path, smi=SMI_H100_570, tools={"nvlink": "12.4", "ptxas": "12.4"}, lib_dirs={
        "usr/local/cuda-12.4/lib64": ["libcudnn.so.9 -> libcudnn.so.9.1.0"]})
    env["XLA_FLAGS"] = "--xla_gpu_autotune_level=2"
    before = sorted(p.name for p in (cu12 / "bin").iterdir())
    _, doc = doctor(cu12, env, "--fix", "--dry-run")
    plan = doc["plan"]
    assert [(o["op"], o["name"], o["value"]) for o in plan["env_ops"]] == [
        ("set", "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=1"),
        ("remove", "LD_LIBRARY_PATH", str(tmp_path / "usr/local/cuda-12.4/lib64")),
    ]
    assert plan["because"] == ["cuda-tools", "cuda-lib-shadowing"] and plan["pip"] == []
    assert sorted(p.name for p in (cu12 / "bin").iterdir()) == before  # --dry-run wrote nothing
    res = subprocess.run([sys.executable, "-m", "bdv2.cli", "doctor", "--python", str(cu12), "--fix", "--print-env"],
                         capture_output=True, text=True, env=env, timeout=120)
    shell = subprocess.run(["sh", "-c", res.stdout + '\nprintf "%s|%s" "$XLA_FLAGS" "$LD_LIBRARY_PATH"'],
                           capture_output=True, text=True, env=env).stdout
    flags, ld = shell.split("|")
    # The user's own flag stays; the fix's flag is added once; the shadowing folder is gone.
    assert flags.split() == ["--xla_gpu_autotune_level=2", "--xla_gpu_force_compilation_parallelism=1"]
    assert ld == ""


@pytest.mark.parametrize(("cvd", "batch", "bad"), [
    (None, 256, False), (None, 250, True), ("0,1,2", 256, True), ("0,1", 250, False), ("0,-1,2", 250, False),
])
def test_batch_size_against_the_visible_gpus(cu12: Path, tmp_path: Path, cvd: str | None, batch: int,
                                             bad: bool) -> None:
    env, _ = make_system(tmp_path, smi="\n".join([SMI_H100_570] * 4))  # a 4-GPU machine
    if cvd is not None:
        env["CUDA_VISIBLE_DEVICES"] = cvd
    _, doc = doctor(cu12, env, "--batch-size", str(batch))
    found = [f for f in by_id(doc, "batch-indivisible") if "is not divisible by the" in f["title"]]
    assert bool(found) == bad, [f["title"] for f in doc["findings"]]


def test_driver_read_through_nvml_first(tmp_path: Path) -> None:
    from bdv2.doctor.probe.system import collect_driver

    def runner(cmd: list[str]) -> tuple[int, str]:
        if cmd[1:2] == ["-c"]:  # the NVML probe, as nvidia-ml-py answers it
            return 0, ('{"version": "575.57.08", "cuda": "12.9", "gpus": [{"name": "NVIDIA H100 80GB HBM3", '
                       '"compute_cap": "9.0"}]}\n')
        raise AssertionError(f"nvidia-smi should not be needed: {cmd}")

    info = collect_driver(runner, tmp_path, path="/nonexistent", nvml_python="/venv/bin/python")
    assert info.source == "nvml" and info.version == "575.57.08" and info.cuda == "12.9"
    assert info.gpus[0].compute_cap == "9.0"

    def failing(cmd: list[str]) -> tuple[int, str]:
        return 1, "pynvml.NVMLError_LibRmVersionMismatch: RM has detected an NVML/RM version mismatch."

    info = collect_driver(failing, tmp_path, path="/nonexistent", nvml_python="/venv/bin/python")
    assert "mismatch" in info.error


def test_system_facts_read_and_write_the_snapshot_json_unchanged(cu12: Path, tmp_path: Path) -> None:
    from bdv2.doctor.probe.collect import collect

    env, _ = make_system(tmp_path, smi=SMI_H100_570, tools={"nvlink": "12.4", "ptxas": "12.4"}, lib_dirs={
        "usr/local/cuda-12.4/lib64": ["libcudnn.so.9 -> libcudnn.so.9.1.0"]})
    env["XLA_FLAGS"] = "--xla_gpu_autotune_level=2"
    facts = collect(str(cu12), env=env).system
    assert facts.driver.version == "570.124.06" and facts.driver.gpus[0].compute_cap == "9.0"
    assert facts.tools["nvlink"].release == "12.4" and facts.ld_library_path[0].libs[0].version == "9.1.0"
    data = json.loads(json.dumps(facts.to_dict()))
    assert SystemFacts.from_dict(data) == facts and SystemFacts.from_dict(data).to_dict() == data
    # A snapshot written before the facts were typed (plain dicts, a stray batch_size) still loads.
    old = {"ldconfig": [], "ld_library_path": [], "tools": {}, "batch_size": 8,
           "driver": {"version": "535.104.05", "cuda": "12.2", "gpus": [{"name": "A100", "compute_cap": "8.0"}]}}
    assert SystemFacts.from_dict(old).driver.gpus[0].name == "A100"
