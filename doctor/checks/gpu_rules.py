"""Built-in checks over the system facts: CUDA library copies, the driver, CUDA tools.

Which copy of a CUDA library a process loads depends on how the installed jaxlib finds them (the
[knowledge.lookup_eras] table of compat_matrix.toml): jaxlib <= 0.4.18 CUDA builds carry a RUNPATH to the pip
wheels, so LD_LIBRARY_PATH wins; 0.4.19 - 0.5.0 link them with jaxlib's own RPATH and 0.5.1 - 0.6.1 through
XLA's CUDA stub rules, so the wheels win; from 0.6.2 the plugin preloads the wheels by absolute path. glibc
keeps the first copy of a soname a process loads, whoever loaded it
(https://man7.org/linux/man-pages/man8/ld.so.8.html).
The LD_LIBRARY_PATH shadowing check is in ldpath_rules.py.
"""

from __future__ import annotations

import enum
import re

from packaging.version import Version

from ..findings import EnvOp, EnvOpKind, Finding, Severity
from ..matrix.knowledge import Knowledge
from ..matrix.load import Matrix, Rule
from ..probe.facts import Lib
from ..probe.snapshot import Snapshot
from ._common import PIP, as_version, finding, major_of, pip_libs, public
from .registry import Options, check


class Backend(enum.Enum):
    """The installed JAX CUDA backend."""

    NONE = ""
    PLUGIN12 = "plugin12"
    PLUGIN13 = "plugin13"
    MONOLITHIC = "monolithic"
    """A jaxlib '+cuda' build (before the plugins)."""

    def __bool__(self) -> bool:
        return self is not Backend.NONE

    @property
    def cuda_major(self) -> int:
        """The CUDA major of a plugin; a '+cuda' jaxlib says its own in its local label (see cuda_major())."""
        return {Backend.PLUGIN13: 13, Backend.PLUGIN12: 12, Backend.MONOLITHIC: 12}.get(self, 0)


class LookupEra(enum.Enum):
    """How the installed JAX CUDA backend finds its libraries."""

    RUNPATH = "runpath"
    RPATH = "rpath"
    PRELOAD = "preload"


def gpu_backend(snap: Snapshot) -> tuple[Backend, Version | None]:
    """The installed JAX CUDA backend and its version (Backend.NONE, None without one)."""
    d = snap.jax_cuda_backend()
    if d is None or d.parsed is None:
        return Backend.NONE, None
    kind = {"jax-cuda13-plugin": Backend.PLUGIN13, "jax-cuda12-plugin": Backend.PLUGIN12}.get(d.key, Backend.MONOLITHIC)
    return kind, public(d.parsed)


def cuda_major(snap: Snapshot) -> int:
    """The CUDA major of jax's CUDA backend: 13/12 for the plugins, the local label of a '+cuda11.cudnn86' jaxlib."""
    kind, _ = gpu_backend(snap)
    lib = snap.dist("jaxlib")
    if kind is Backend.MONOLITHIC and lib is not None:
        m = re.search(r"\+cuda(\d+)", lib.version)
        if m:
            return int(m.group(1))
    return kind.cuda_major


def cudnn_need(snap: Snapshot, knowledge: Knowledge) -> tuple[str, int, str] | None:
    """(cuDNN wheel, major, lowest version) jax's CUDA backend needs; None without a CUDA backend.

    A '+cuda12.cudnn89' jaxlib names its cuDNN in its local label; the plugins follow [knowledge.cudnn].
    """
    kind, v = gpu_backend(snap)
    if not kind or v is None:
        return None
    major_cuda = cuda_major(snap)
    if kind is Backend.PLUGIN13:
        return "nvidia-cudnn-cu13", int(knowledge.cudnn_cuda13.split(".")[0]), knowledge.cudnn_cuda13
    lib = snap.dist("jaxlib")
    m = re.search(r"cudnn(\d)(\d+)", lib.version) if kind is Backend.MONOLITHIC and lib else None
    if m:
        return f"nvidia-cudnn-cu{major_cuda}", int(m.group(1)), f"{m.group(1)}.{m.group(2)}"
    need = next(n for n in knowledge.cudnn if v >= n.since)
    return f"nvidia-cudnn-cu{major_cuda}", need.major, need.floor


def cudnn_command(snap: Snapshot, knowledge: Knowledge) -> str | None:
    """The pip command that installs the cuDNN this jax's CUDA backend was built for."""
    need = cudnn_need(snap, knowledge)
    if need is None:
        return None
    wheel, major, floor = need
    return f'{PIP} install "{wheel}>={floor},<{major + 1}"'


def lookup_era(snap: Snapshot, knowledge: Knowledge) -> LookupEra | None:
    """How the installed JAX CUDA backend finds its libraries; None without a CUDA backend."""
    kind, v = gpu_backend(snap)
    if not kind or v is None:
        return None
    return next(LookupEra(era) for since, era in knowledge.lookup_eras if v >= since)


def _system_copies(snap: Snapshot, stem: str) -> list[Lib]:
    sysf = snap.system
    copies = [lib for e in sysf.ld_library_path for lib in e.libs if lib.stem == stem]
    if sysf.conda_lib is not None:
        copies += [lib for lib in sysf.conda_lib.libs if lib.stem == stem]
    copies += [lib for lib in sysf.ldconfig if lib.stem == stem]
    return copies


@check("cuda_libs_found")
def check_cuda_libs_found(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """A JAX CUDA backend without cuDNN anywhere, or with only a system cuDNN that is too old."""
    kind, v = gpu_backend(snap)
    if not kind or v is None:
        return []
    if "libcudnn" in pip_libs(snap) or any(snap.dist(f"nvidia-cudnn-cu{n}") for n in (11, 12, 13)):
        return []
    wheel, major, floor = cudnn_need(snap, matrix.knowledge) or ("nvidia-cudnn-cu12", 9, "9")
    want_major = str(major)
    copies = [c for c in _system_copies(snap, "libcudnn") if major_of(c.version) == want_major]
    spec = f">={floor},<{major + 1}"
    if not copies:
        title = f"no cuDNN {want_major} for jax's CUDA backend ({kind.value} {v}): JAX will fall back to the CPU"
        return [finding(rule, title,
                         ["searched: the pip wheels, LD_LIBRARY_PATH, $CONDA_PREFIX/lib, the ldconfig cache"],
                         "install the cuDNN wheel", (f'{PIP} install "{wheel}{spec}"',), severity=Severity.ERROR)]
    best = copies[0]
    bv = as_version(best.version)
    if bv is not None and len(best.version.split(".")) > 1 and bv < Version(floor):
        title = f"the system cuDNN {best.version} ({best.path}) is older than the {floor} jax {v} needs"
        return [finding(rule, title,
                         [f"{best.path}: {best.version}"], "install the cuDNN wheel (it is then preferred)",
                         (f'{PIP} install "{wheel}{spec}"',), severity=Severity.ERROR)]
    return []


def _ptxas_wheels(knowledge: Knowledge) -> tuple[str, ...]:
    """The ptxas wheels of the CUDA 12 and 13 plugins ([knowledge.ptxas_pin])."""
    return tuple(w.wheel for w in knowledge.nvcc if w.cuda_major >= 12)


def _ptxas(snap: Snapshot, knowledge: Knowledge) -> tuple[str, str]:
    """(release like '12.9', where) of the ptxas XLA will run."""
    for name in _ptxas_wheels(knowledge):
        d = snap.dist(name)
        if d is not None and d.parsed is not None and not snap.env.get("CUDA_ROOT"):
            return ".".join(str(x) for x in d.parsed.release[:2]), f"pip wheel {d.name} {d.version}"
    tool = snap.system.tools.get("ptxas")
    if tool and tool.release:
        return tool.release, tool.path
    return "", ""


def _rel(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:2])


class DriverProblem(enum.Enum):
    """What check_driver found; later steps look at these, never at a finding's wording."""

    MODULE_MISMATCH = "module-mismatch"
    KERNEL_USERSPACE_DIFFER = "kernel-userspace-differ"
    TOO_OLD_FOR_CUDA = "too-old-for-cuda"
    OLDER_THAN_PTXAS = "older-than-ptxas"
    NO_CUDA_BACKEND = "no-cuda-backend"
    COMPUTE_CAP = "compute-capability"


Found = list[tuple[DriverProblem, Finding]]


def _driver_module(rule: Rule, snap: Snapshot) -> Found:
    drv = snap.system.driver
    out: Found = []
    if "mismatch" in drv.error.lower():
        out.append((DriverProblem.MODULE_MISMATCH, finding(
            rule, "the NVIDIA kernel module and the user-space driver differ", [drv.error],
            "reboot (or reload the nvidia kernel modules) so both are the installed version", severity=Severity.ERROR)))
    if drv.kernel_module and drv.version and drv.kernel_module != drv.version:
        out.append((DriverProblem.KERNEL_USERSPACE_DIFFER, finding(
            rule, f"kernel module {drv.kernel_module} but user-space driver {drv.version}",
            [f"/proc/driver/nvidia/version: {drv.kernel_module}", f"nvidia-smi: {drv.version}"],
            "reboot (or reload the nvidia kernel modules)", severity=Severity.ERROR)))
    return out


def _driver_floor(rule: Rule, snap: Snapshot, knowledge: Knowledge, major: int) -> Found:
    drv = snap.system.driver
    dv, floor = as_version(drv.version), knowledge.cuda_driver_floor.get(major)
    if dv is None or floor is None or dv >= floor:
        return []
    title = f"driver {drv.version} is too old for CUDA {major} (needs >= {floor})"
    evidence = [f"driver {drv.version} (CUDA {drv.cuda or '?'})"]
    if major == 13:
        f = finding(rule, title, evidence, f"upgrade the driver to >= {floor}, or use jax[cuda12]",
                     (f'{PIP} uninstall -y jax-cuda13-plugin jax-cuda13-pjrt', f'{PIP} install "jax[cuda12]"'),
                     severity=Severity.ERROR)
    else:
        f = finding(rule, title, evidence, "upgrade the NVIDIA driver, or use the CUDA forward-compatibility package",
                     severity=Severity.ERROR)
    return [(DriverProblem.TOO_OLD_FOR_CUDA, f)]


def _driver_vs_ptxas(rule: Rule, snap: Snapshot, knowledge: Knowledge, major: int) -> Found:
    drv = snap.system.driver
    ptxas, where = _ptxas(snap, knowledge)
    if not (major and ptxas and drv.cuda and _rel(drv.cuda) < _rel(ptxas)):
        return []
    # A ptxas matching the driver is only an option where the plugin accepts it.
    pin_ok = _rel(drv.cuda) >= knowledge.ptxas_pin_min and major == 12
    cmds = (f'{PIP} install "{knowledge.nvcc_for(12).wheel}=={drv.cuda}.*"',) if pin_ok else ()
    return [(DriverProblem.OLDER_THAN_PTXAS, finding(
        rule, f"the driver's CUDA {drv.cuda} is older than ptxas {ptxas}: XLA turns parallel compilation off",
        [f"driver {drv.version}: CUDA {drv.cuda}", f"ptxas {ptxas}: {where}"],
        "upgrade the driver (or use NVIDIA's CUDA forward-compatibility package)"
        + ("; or install the ptxas of the driver's CUDA" if cmds else ""), cmds, severity=Severity.WARNING))]


def _gpus(rule: Rule, snap: Snapshot, knowledge: Knowledge, major: int) -> Found:
    drv = snap.system.driver
    out: Found = []
    jax, jaxlib = snap.dist("jax"), snap.dist("jaxlib")
    if drv.gpus and not major and jax is not None:
        title = f"{len(drv.gpus)} GPU(s) ({drv.gpus[0].name}) but jax has no CUDA backend: it runs on the CPU"
        out.append((DriverProblem.NO_CUDA_BACKEND, finding(
            rule, title, [f"jaxlib {jaxlib.version if jaxlib else '-'}", f"driver {drv.version}"],
            "install jax's CUDA 12 extra", (f'{PIP} install "jax[cuda12]=={jax.version}"',), severity=Severity.ERROR)))
    floor = knowledge.compute_cap_floor.get(major)
    low12 = knowledge.compute_cap_floor.get(12, (0, 0))
    for g in drv.gpus:
        cc = _rel(g.compute_cap)
        if floor and len(cc) == 2 and cc < floor:
            out.append((DriverProblem.COMPUTE_CAP, finding(
                rule, f"{g.name} (compute capability {g.compute_cap}) is below CUDA {major}'s "
                f"minimum {floor[0]}.{floor[1]}", [f"GPU {g.name}"],
                f"use jax[cuda12] (SM >= {low12[0]}.{low12[1]}) or an older jax for this GPU",
                severity=Severity.ERROR)))
    return out


@check("driver")
def check_driver(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    major = cuda_major(snap)
    found = _driver_module(rule, snap)
    if not snap.system.driver.version:
        return [f for _, f in found]
    found += _driver_floor(rule, snap, matrix.knowledge, major)
    if not any(kind is DriverProblem.TOO_OLD_FOR_CUDA for kind, _ in found):
        found += _driver_vs_ptxas(rule, snap, matrix.knowledge, major)
    found += _gpus(rule, snap, matrix.knowledge, major)
    return [f for _, f in found]


@check("cuda_tools")
def check_cuda_tools(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    major = cuda_major(snap)
    if not major:
        return []
    out: list[Finding] = []
    knowledge = matrix.knowledge
    ptxas, where = _ptxas(snap, knowledge)
    nvlink = snap.system.tools.get("nvlink")
    if ptxas and nvlink is not None and nvlink.release and _rel(nvlink.release) < _rel(ptxas):
        p, n = "".join(ptxas.split(".")[:2]), "".join(nvlink.release.split(".")[:2])
        out.append(finding(
            rule, f"nvlink {nvlink.release} ({nvlink.path}) is older than ptxas {ptxas}: expect "
            f"'nvlink fatal : Input file ... newer than toolkit ({p} vs {n})'",
            [f"ptxas {ptxas}: {where}", f"nvlink {nvlink.release}: {nvlink.path}"],
            "compile without the linking step (slower compiles), or take the old CUDA bin folder "
            f"{nvlink.path.rsplit('/', 1)[0]} off PATH",
            env_ops=(EnvOp(EnvOpKind.SET, "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=1"),),
            severity=Severity.ERROR))
    if not ptxas and not snap.system.local_cuda_ptxas:
        title = "no ptxas found for XLA (no nvidia-cuda-nvcc wheel, none on PATH or in /usr/local/cuda)"
        nvcc = knowledge.nvcc_for(major)
        out.append(finding(rule, title,
                            ["searched: the pip wheel, PATH, /usr/local/cuda/bin"], "install the pip ptxas",
                            (f'{PIP} install "{nvcc.wheel}>={nvcc.floor}"',), severity=Severity.WARNING))
    flags = snap.env.get("XLA_FLAGS", "")
    if "xla_gpu_cuda_data_dir" in flags and any(snap.dist(n) for n in _ptxas_wheels(knowledge)):
        out.append(finding(rule, "--xla_gpu_cuda_data_dir in XLA_FLAGS is overridden by JAX",
                            [f"XLA_FLAGS={flags}"],
                            "JAX sets the CUDA data dir itself when the nvidia-cuda-nvcc wheel is installed; set "
                            "CUDA_ROOT instead (jax >= 0.4.35)", severity=Severity.WARNING))
    return out
