"""System facts outside Python's metadata: CUDA libraries, the NVIDIA driver, CUDA tools, XLA flags.

Static probes only: file names, symlinks, `ldconfig -p`, `nvidia-smi`, `/proc/driver/nvidia/version`,
`ptxas/nvlink/nvcc --version`, and a byte scan of jaxlib's own library for the flag names it knows.
Nothing here loads a CUDA library. Every system input is a parameter (the environment, a root folder
standing for `/`, the command runner), so tests build fake trees instead of patching globals.
"""

from __future__ import annotations

import functools
import json
import mmap
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..matrix.knowledge import default_knowledge
from .facts import Driver, Lib, LibFolder, SystemFacts, Tool, XlaFlagScan

# Library name stems whose copies decide whether JAX or TF get a working CUDA stack.
CUDA_LIB_STEMS = (
    "libcudart", "libcublas", "libcublasLt", "libcudnn", "libcusparse", "libcusolver", "libcufft", "libnccl",
    "libnvJitLink", "libnvrtc", "libcupti", "libcuda", "libnvidia-ml",
)
_LIB_RE = re.compile(r"^(lib[A-Za-z_-]+?)\.so(?:\.([0-9][0-9.]*))?$")
_RELEASE_RE = re.compile(r"release (\d+\.\d+), V(\d+(?:\.\d+)+)")
_KERNEL_RE = re.compile(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)")
TOOL_TIMEOUT_S = 10.0

Runner = Callable[[list[str]], tuple[int, str]]
"""Runs a command, returns (exit code, stdout+stderr); exit code 127 when it cannot be started."""


def started(*jobs: Callable[[], Any]) -> Callable[[], list[Any]]:
    """Start each job in a thread now; the returned function waits for them and gives their results in order
    (raising a job's exception). Jobs that wait on commands overlap, with each other and with the caller's work."""
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int, job: Callable[[], Any]) -> None:
        try:
            results[i] = job()
        except BaseException as e:  # re-raised in the caller's thread by wait()
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()

    def wait() -> list[Any]:
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results

    return wait


def run_command(cmd: list[str], env: Mapping[str, str] | None = None) -> tuple[int, str]:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False,
                             stdin=subprocess.DEVNULL, env=None if env is None else dict(env))
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, str(e)
    return res.returncode, (res.stdout + res.stderr)


def parse_lib_name(name: str) -> tuple[str, str] | None:
    """'libcudnn.so.8.9.7' -> ('libcudnn', '8.9.7'); 'libcublasLt.so.12' -> ('libcublasLt', '12')."""
    m = _LIB_RE.match(name)
    if not m or m.group(1) not in CUDA_LIB_STEMS:
        return None
    return m.group(1), m.group(2) or ""


def scan_lib_dir(d: str) -> list[Lib]:
    """CUDA libraries in one folder: name, the version its name (or its symlink target's) carries."""
    out: list[Lib] = []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return out
    for name in names:
        parsed = parse_lib_name(name)
        if parsed is None:
            continue
        stem, version = parsed
        full = os.path.join(d, name)
        target = os.path.basename(os.path.realpath(full))
        t = parse_lib_name(target)
        if t and len(t[1]) > len(version):
            version = t[1]  # libcudnn.so.8 -> libcudnn.so.8.9.7 tells more
        out.append(Lib(stem, name, version, full))
    return out


def parse_ldconfig(text: str) -> list[Lib]:
    """`ldconfig -p` lines such as '\tlibcudnn.so.8 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn.so.8'."""
    out = []
    listed: dict[str, dict[str, str]] = {}  # folder -> {name: version}, each folder read once
    for line in text.splitlines():
        m = re.match(r"\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)", line)
        if not m or "64" not in m.group(2):  # x86-64 / AArch64 entries; skip 32-bit libc6 ones
            continue
        name, path = m.group(1), m.group(3)
        parsed = parse_lib_name(name)
        if parsed is None:
            continue
        d = os.path.dirname(path)
        if d not in listed:
            listed[d] = {e.name: e.version for e in scan_lib_dir(d)}
        out.append(Lib(parsed[0], name, listed[d].get(name, parsed[1]), path))
    return out


def driver_cuda(version: str, table: tuple[tuple[tuple[int, int], str], ...] | None = None) -> str:
    """Highest CUDA a driver supports, from NVIDIA's toolkit/driver table (compat_matrix.toml [knowledge])."""
    try:
        v = tuple(int(x) for x in version.split(".")[:2])
    except ValueError:
        return ""
    for minimum, cuda in table if table is not None else default_knowledge().driver_cuda:
        if v >= minimum:
            return cuda
    return ""


# Asked through NVML (nvidia-ml-py) in a subprocess: a broken driver can hang or crash the caller.
_NVML_PROBE = """
import json, pynvml
pynvml.nvmlInit()
v = pynvml.nvmlSystemGetDriverVersion()
c = pynvml.nvmlSystemGetCudaDriverVersion()
gpus = []
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    name = pynvml.nvmlDeviceGetName(h)
    major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
    gpus.append({"name": name.decode() if isinstance(name, bytes) else name, "compute_cap": f"{major}.{minor}"})
print(json.dumps({"version": v.decode() if isinstance(v, bytes) else v,
                  "cuda": f"{c // 1000}.{c % 1000 // 10}", "gpus": gpus}))
"""


def _nvml(runner: Runner, python: str | None) -> dict[str, Any]:
    if not python:
        return {}
    rc, out = runner([python, "-c", _NVML_PROBE])
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
    if rc != 0 or not lines:
        return {"nvml_error": out.strip()[-300:]} if "NVML" in out or "nvml" in out else {}
    try:
        data = json.loads(lines[-1])
    except ValueError:
        return {}
    return {"version": data["version"], "cuda": data["cuda"], "gpus": data["gpus"], "source": "nvml"}


def _smi(runner: Runner, smi: str) -> dict[str, Any]:
    rc, out = runner([smi, "--query-gpu=driver_version,name,compute_cap", "--format=csv,noheader"])
    if rc != 0 and "compute_cap" in out:  # drivers before the compute_cap field
        rc, out = runner([smi, "--query-gpu=driver_version,name", "--format=csv,noheader"])
    if rc != 0:
        return {"error": out.strip()[-500:], "source": "nvidia-smi"}
    info: dict[str, Any] = {"source": "nvidia-smi"}
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and re.match(r"\d+\.\d+", parts[0]):
            info["version"] = parts[0]
            gpus.append({"name": parts[1], "compute_cap": parts[2] if len(parts) > 2 else ""})
    info["gpus"] = gpus
    return info


def collect_driver(runner: Runner, root: Path, path: str | None = None,
                   nvml_python: str | None = None) -> Driver:
    """Driver version, its CUDA, GPUs: from NVML (nvidia-ml-py) when ``nvml_python`` has it, else
    nvidia-smi, else /proc; the kernel module's version from /proc; NVML's error verbatim."""
    info: dict[str, Any] = {}
    nvml = _nvml(runner, nvml_python)
    proc = root / "proc" / "driver" / "nvidia" / "version"
    try:
        m = _KERNEL_RE.search(proc.read_text())
        if m:
            info["kernel_module"] = m.group(1)
    except OSError:
        pass
    if nvml.get("version"):
        info.update(nvml)
    elif nvml.get("nvml_error"):
        info["error"] = nvml["nvml_error"]
    smi = shutil.which("nvidia-smi", path=path)
    if smi and "version" not in info:
        info.update(_smi(runner, smi))
    if "version" not in info and "kernel_module" in info:
        info["version"] = info["kernel_module"]
        info.setdefault("source", "/proc/driver/nvidia/version")
    if info.get("version") and not info.get("cuda"):
        info["cuda"] = driver_cuda(info["version"])
    return Driver.from_dict(info)


def collect_tools(env: Mapping[str, str], runner: Runner) -> dict[str, Tool]:
    """ptxas, nvlink and nvcc as found on PATH, with the CUDA release each reports."""
    path = env.get("PATH", "")
    found = {tool: where for tool in ("ptxas", "nvlink", "nvcc") if (where := shutil.which(tool, path=path))}
    texts = started(*(functools.partial(runner, [where, "--version"]) for where in found.values()))()
    out: dict[str, Tool] = {}
    for (tool, where), (_, text) in zip(found.items(), texts, strict=True):
        m = _RELEASE_RE.search(text)
        out[tool] = Tool(where, m.group(1) if m else "", m.group(2) if m else "")
    return out


def known_xla_flags(site_dirs: list[str], jaxlib_location: str) -> tuple[set[str], str]:
    """Flag names compiled into the installed jaxlib (a byte scan: XLA aborts on an unknown flag)."""
    candidates = []
    for d in [jaxlib_location, *site_dirs]:
        if not d:
            continue
        lib = Path(d) / "jaxlib"
        for pattern in ("xla_extension*.so", "_jax*.so", "libjax_common*.so", "xla_client*.so"):
            candidates.extend(sorted(lib.glob(pattern)))
        if candidates:
            break
    flags: set[str] = set()
    for path in candidates:
        try:
            with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                flags.update(m.decode() for m in re.findall(rb"xla_[a-z0-9_]{3,100}", mm))
        except (OSError, ValueError):
            continue
    return flags, (str(candidates[0]) if candidates else "")


def nvml_python(candidates: list[tuple[str, str]]) -> str | None:
    """The first (interpreter, site dir) pair whose site dir holds nvidia-ml-py (pynvml), by its files."""
    for py, site in candidates:
        if py and site and ((Path(site) / "pynvml.py").exists() or (Path(site) / "pynvml").is_dir()):
            return py
    return None


SystemCommands = Callable[[], list[Any]]
"""Waits for and gives what ``system_commands`` started: [Driver, {tool: Tool}, [Lib] of ld.so's cache]."""


def system_commands(env: Mapping[str, str], runner: Runner = run_command, root: Path = Path("/"),
                    nvml: str | None = None) -> SystemCommands:
    """Start the facts that come from commands (the driver, the CUDA tools, ``ldconfig -p``), all at once: each
    waits on its own subprocess, so their times overlap with each other and with whatever the caller does next."""
    ldconfig = shutil.which("ldconfig", path=env.get("PATH", "") + ":/sbin:/usr/sbin")

    def cache() -> list[Lib]:
        rc, text = runner([ldconfig, "-p"]) if ldconfig else (127, "")
        return parse_ldconfig(text) if rc == 0 else []

    return started(functools.partial(collect_driver, runner, root, env.get("PATH"), nvml),
                   functools.partial(collect_tools, env, runner), cache)


def collect_system(env: Mapping[str, str], site_dirs: list[str], jaxlib_location: str = "",
                   runner: Runner = run_command, root: Path = Path("/"),
                   nvml: str | None = None, commands: SystemCommands | None = None) -> SystemFacts:
    """Everything above for one machine. ``root`` stands for '/' (tests pass a fake tree); ``nvml`` is an
    interpreter with nvidia-ml-py to ask the driver through, if any; ``commands``: ``system_commands`` of the same
    arguments, already started (default: started here)."""
    wait = commands or system_commands(env, runner, root, nvml)
    ld = [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if d]
    folders = tuple(LibFolder(d, tuple(scan_lib_dir(d))) for d in ld)
    conda = env.get("CONDA_PREFIX")
    usual = root / "usr/local/cuda/bin/ptxas"
    flags = _xla_flag_names(env.get("XLA_FLAGS", ""))
    scan = None
    if flags:
        known, scanned = known_xla_flags(site_dirs, jaxlib_location)
        scan = XlaFlagScan(tuple(flags), scanned, tuple(f for f in flags if known and f not in known))
    conda_lib = (LibFolder(os.path.join(conda, "lib"), tuple(scan_lib_dir(os.path.join(conda, "lib")))) if conda
                 else None)
    local_ptxas = str(usual) if usual.exists() else ""
    driver: Driver
    tools: dict[str, Tool]
    ldconfig_libs: list[Lib]
    driver, tools, ldconfig_libs = wait()
    return SystemFacts(
        ld_library_path=folders, ldconfig=tuple(ldconfig_libs), driver=driver, tools=tools, conda_lib=conda_lib,
        local_cuda_ptxas=local_ptxas, xla_flags=scan,
    )


def _xla_flag_names(value: str) -> list[str]:
    names = []
    for token in value.split():
        names.append(token.lstrip("-").split("=", 1)[0] if token.startswith("--") else token)
    return names
