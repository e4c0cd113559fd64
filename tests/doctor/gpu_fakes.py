"""Faithful fakes of GPU machines for tests on a GPU-less box.

A fake target environment is a real venv (no pip) whose site-packages holds the dist-info and the
`nvidia/*/lib` file names of a recorded wheel set (tests/data/snapshots/*.json, recorded here from
real `pip install "jax[cuda12]"` / `"jax[cuda13]"` environments). The system side is a folder of fake
tools that print real output (nvidia-smi, ptxas, nvlink, ldconfig) and a fake /proc tree.
"""

from __future__ import annotations

import json
import os
import venv
from pathlib import Path
from typing import Any

SNAPS = Path(__file__).parent.parent / "data" / "snapshots"

# Real output formats: `nvidia-smi --query-gpu=driver_version,name,compute_cap --format=csv,noheader`,
# `ptxas --version` / `nvlink --version` of a CUDA 12.4 toolkit, /proc/driver/nvidia/version.
SMI_A100_535 = "535.104.05, NVIDIA A100-SXM4-80GB, 8.0"
SMI_H100_570 = "570.124.06, NVIDIA H100 80GB HBM3, 9.0"
SMI_V100_470 = "470.82.01, Tesla V100-SXM2-16GB, 7.0"
SMI_MISMATCH = "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 550.54"
PROC_535 = ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
            "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
PROC_OPEN_550 = ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  "
                 "(dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\nGCC version:  gcc version 12.3.0\n")


def cuda_tool_version(release: str, build: str) -> str:
    return ("nvlink: NVIDIA (R) Cuda linker\nCopyright (c) 2005-2024 NVIDIA Corporation\n"
            "Built on Tue_Feb_27_16:19:38_PST_2024\n"
            f"Cuda compilation tools, release {release}, V{build}\nBuild cuda_{release}.r{release}/compiler.0_0\n")


def make_target(root: Path, snapshot: str, jax_version: str = "") -> Path:
    """A venv holding the recorded snapshot's distributions (metadata only) and nvidia lib files.

    ``jax_version`` moves jax, jaxlib and the CUDA plugin/PJRT of the recorded jax 0.10.2 set to another release
    (their NVIDIA wheels stay as recorded), for checks that depend on the jaxlib era."""
    text = (SNAPS / snapshot).read_text()
    if jax_version:
        text = text.replace("0.10.2", jax_version).replace("0.10.1", jax_version)
    data: dict[str, Any] = json.loads(text)
    venv.create(root, with_pip=False)
    site = next((root / "lib").glob("python3*/site-packages"))
    for d in data["distributions"]:
        info = site / f"{d['name'].replace('-', '_')}-{d['version']}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        lines = ["Metadata-Version: 2.1", f"Name: {d['name']}", f"Version: {d['version']}"]
        lines += [f"Requires-Dist: {r}" for r in d["requires"]]
        (info / "METADATA").write_text("\n".join(lines) + "\n")
    for lib in data["nvidia_libs"]:
        rel = lib["dir"].split("/site-packages/", 1)[1]
        (site / rel).mkdir(parents=True, exist_ok=True)
        for name in lib["files"]:
            (site / rel / name).write_bytes(b"")
    return root


def write_tool(bin_dir: Path, name: str, output: str, code: int = 0) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / f"{name}.out").write_text(output)
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\ncat "{bin_dir / (name + ".out")}"\nexit {code}\n')
    script.chmod(0o755)


def make_system(base: Path, smi: str | None = None, proc: str | None = None, tools: dict[str, str] | None = None,
                ldconfig: str = "", lib_dirs: dict[str, list[str]] | None = None) -> tuple[dict[str, str], Path]:
    """Fake tools on PATH, a fake /proc and fake system library folders; returns (env, sysroot)."""
    bin_dir, root = base / "bin", base / "root"
    if smi is not None:
        write_tool(bin_dir, "nvidia-smi", smi + "\n", 18 if "Failed" in smi else 0)
    for name, release in (tools or {}).items():
        write_tool(bin_dir, name, cuda_tool_version(release, release + ".131"))
    write_tool(bin_dir, "ldconfig", ldconfig)
    if proc is not None:
        (root / "proc" / "driver" / "nvidia").mkdir(parents=True)
        (root / "proc" / "driver" / "nvidia" / "version").write_text(proc)
    ld = []
    for d, names in (lib_dirs or {}).items():
        folder = base / d
        folder.mkdir(parents=True, exist_ok=True)
        for n in names:
            target = folder / n
            if "->" in n:  # 'libcudnn.so.8 -> libcudnn.so.8.6.0': a symlink, as a CUDA install has
                link, real = (x.strip() for x in n.split("->"))
                (folder / real).write_bytes(b"")
                (folder / link).symlink_to(real)
            else:
                target.write_bytes(b"")
        ld.append(str(folder))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "BDV2_SYSROOT": str(root), "HOME": os.environ.get("HOME", "/root")}
    if ld:
        env["LD_LIBRARY_PATH"] = ":".join(ld)
    return env, root
