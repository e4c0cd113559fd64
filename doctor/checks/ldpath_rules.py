"""The built-in check over LD_LIBRARY_PATH: folders holding other copies of the pip CUDA wheels' libraries.

Which copy wins depends on how the installed jaxlib finds the wheels (gpu_rules.lookup_era, the
[knowledge.lookup_eras] table). In every era a pip CUDA library's own dependencies (libcusparse ->
libnvJitLink, libcublas -> libcublasLt) are looked up through its RUNPATH, which LD_LIBRARY_PATH overrides
(https://man7.org/linux/man-pages/man8/ld.so.8.html), so an older copy of those on LD_LIBRARY_PATH is loaded
even under an RPATH or preloading jaxlib: an error, not a warning.
"""

from __future__ import annotations

from typing import assert_never

from packaging.version import Version

from ..findings import EnvOp, EnvOpKind, Finding, Severity
from ..matrix.load import Matrix, Rule
from ..probe.facts import Lib
from ..probe.snapshot import Snapshot
from ..probe.system import parse_lib_name
from ._common import as_version, finding, major_of, pip_libs, public
from .gpu_rules import LookupEra, lookup_era
from .registry import Options, check

# Library stem -> the pip wheel that ships it, for CUDA 12, CUDA 13 and CUDA 11 (the '+cuda11' jaxlibs).
_WHEELS = {
    "libcudnn": ("nvidia-cudnn-cu12", "nvidia-cudnn-cu13", "nvidia-cudnn-cu11"),
    "libcublas": ("nvidia-cublas-cu12", "nvidia-cublas", "nvidia-cublas-cu11"),
    "libcublasLt": ("nvidia-cublas-cu12", "nvidia-cublas", "nvidia-cublas-cu11"),
    "libcusparse": ("nvidia-cusparse-cu12", "nvidia-cusparse", "nvidia-cusparse-cu11"),
    "libcusolver": ("nvidia-cusolver-cu12", "nvidia-cusolver", "nvidia-cusolver-cu11"),
    "libcufft": ("nvidia-cufft-cu12", "nvidia-cufft", "nvidia-cufft-cu11"),
    "libnvJitLink": ("nvidia-nvjitlink-cu12", "nvidia-nvjitlink"),
    "libcudart": ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime", "nvidia-cuda-runtime-cu11"),
    "libnccl": ("nvidia-nccl-cu12", "nvidia-nccl-cu13", "nvidia-nccl-cu11"),
    "libnvrtc": ("nvidia-cuda-nvrtc-cu12", "nvidia-cuda-nvrtc", "nvidia-cuda-nvrtc-cu11"),
    "libcupti": ("nvidia-cuda-cupti-cu12", "nvidia-cuda-cupti", "nvidia-cuda-cupti-cu11"),
}
# Libraries that other pip CUDA libraries load as dependencies (through their RUNPATH, after LD_LIBRARY_PATH):
# libcusparse/libcusolver/libcufft need libnvJitLink, libcublas needs libcublasLt. jax never preloads
# libnvJitLink, and loads libcublas before libcublasLt
# (https://github.com/jax-ml/jax/blob/jax-v0.6.2/jax_plugins/cuda/__init__.py).
_DEPENDENCY_STEMS = ("libnvJitLink", "libcublasLt")


def _wheel(snap: Snapshot, stem: str) -> str:
    for name in _WHEELS.get(stem, ()):
        d = snap.dist(name)
        if d is not None:
            return f"{d.name} {d.version}"
    return "a pip wheel"


def _clashes(folder_libs: tuple[Lib, ...], pip: dict[str, tuple[str, str]]) -> list[Lib]:
    """The libraries of one folder that are other copies of a pip wheel's library (same soname and major)."""
    out = []
    for lib in folder_libs:
        if lib.stem in pip and lib.name.startswith(pip[lib.stem][1].split(".so")[0] + ".so"):
            pip_soname = parse_lib_name(pip[lib.stem][1])
            same_major = pip_soname is not None and major_of(pip_soname[1]) == major_of(lib.version)
            if same_major or not lib.version:
                out.append(lib)
    return out


def _shadowing(rule: Rule, snap: Snapshot, era: LookupEra, d: str, clashes: list[Lib],
               pip: dict[str, tuple[str, str]]) -> Finding:
    seen = sorted({lib.stem for lib in clashes})
    ev = [f"{d}: {lib.name}" + (f" ({lib.version})" if lib.version else "") for lib in clashes]
    ev += [f"pip: {pip[s][0]}/{pip[s][1]} from {_wheel(snap, s)}" for s in seen]
    match era:
        case LookupEra.RUNPATH:
            dirs = sorted({pip[s][0] for s in seen})
            return finding(
                rule, f"LD_LIBRARY_PATH folder {d} shadows the pip CUDA wheels ({', '.join(seen)})", ev,
                "put the pip wheels' folders first on LD_LIBRARY_PATH: this jaxlib (<= 0.4.18) finds its "
                "libraries through a RUNPATH, which LD_LIBRARY_PATH overrides",
                env_ops=tuple(EnvOp(EnvOpKind.PREPEND, "LD_LIBRARY_PATH", x) for x in dirs),
                severity=Severity.ERROR)
        case LookupEra.RPATH | LookupEra.PRELOAD:
            how = "preloads the pip wheels" if era is LookupEra.PRELOAD else "prefers the pip wheels (RPATH)"
            return finding(
                rule, f"LD_LIBRARY_PATH folder {d} holds other copies of {', '.join(seen)}", ev,
                f"remove it from LD_LIBRARY_PATH: JAX {how}, but a library loaded earlier by TensorFlow or "
                "PyTorch from this folder wins (glibc keeps the first copy of a soname)",
                env_ops=(EnvOp(EnvOpKind.REMOVE, "LD_LIBRARY_PATH", d),), severity=Severity.WARNING)
        case _:
            assert_never(era)


def _wheel_version(snap: Snapshot, stem: str) -> Version | None:
    for name in _WHEELS.get(stem, ()):
        d = snap.dist(name)
        if d is not None and d.parsed is not None:
            return public(d.parsed)
    return None


def _older_dependencies(snap: Snapshot, clashes: list[Lib]) -> list[Lib]:
    """The copies of a dependency library (libnvJitLink, libcublasLt) older than the pip wheel's own."""
    out = []
    for lib in clashes:
        have, wheel = as_version(lib.version), _wheel_version(snap, lib.stem)
        if lib.stem in _DEPENDENCY_STEMS and have is not None and wheel is not None \
                and have.release[:3] < wheel.release[:3]:
            out.append(lib)
    return out


def _dependency_shadowing(rule: Rule, snap: Snapshot, d: str, older: list[Lib],
                          pip: dict[str, tuple[str, str]]) -> Finding:
    seen = sorted({lib.stem for lib in older})
    ev = [f"{d}: {lib.name} ({lib.version})" for lib in older]
    ev += [f"pip: {pip[s][0]}/{pip[s][1]} from {_wheel(snap, s)}" for s in seen]
    ev.append("libcusparse/libcusolver/libcufft load libnvJitLink, and libcublas loads libcublasLt, through their "
              "RUNPATH, which LD_LIBRARY_PATH overrides in every jaxlib release")
    return finding(
        rule, f"LD_LIBRARY_PATH folder {d} holds an older {', '.join(seen)} than the pip wheels: the pip CUDA "
        "libraries load it instead of their own", ev,
        f"remove {d} from LD_LIBRARY_PATH (expect `undefined symbol: __nvJitLink...` or cuSPARSE/cuBLAS "
        "failures while it is there)",
        env_ops=(EnvOp(EnvOpKind.REMOVE, "LD_LIBRARY_PATH", d),), severity=Severity.ERROR)


def _is_wheel_dir(d: str) -> bool:
    return "/site-packages/nvidia/" in d + "/"


@check("cuda_lib_shadowing")
def check_cuda_lib_shadowing(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """A LD_LIBRARY_PATH folder holding another copy of a library that a pip CUDA wheel provides."""
    era = lookup_era(snap, matrix.knowledge)
    pip = pip_libs(snap)
    out: list[Finding] = []
    ld = snap.system.ld_library_path
    for entry in ld:
        if _is_wheel_dir(entry.dir):
            continue  # the wheels' own folders, injected by hand (the set-up guide's use_pip_cuda_libs)
        clashes = _clashes(entry.libs, pip)
        if not clashes or era is None:
            continue
        older = _older_dependencies(snap, clashes) if era is not LookupEra.RUNPATH else []
        if older:
            out.append(_dependency_shadowing(rule, snap, entry.dir, older, pip))
        rest = [lib for lib in clashes if lib.stem not in {o.stem for o in older}]
        if rest:
            out.append(_shadowing(rule, snap, era, entry.dir, rest, pip))
    injected = [e.dir for e in ld if _is_wheel_dir(e.dir)]
    if era is LookupEra.PRELOAD and injected:
        out.append(finding(
            rule, "LD_LIBRARY_PATH lists the pip CUDA wheels' folders, which this jax does not need", injected,
            "drop them: jax >= 0.6.2 loads the wheels itself; keeping them only matters to other programs",
            env_ops=tuple(EnvOp(EnvOpKind.REMOVE, "LD_LIBRARY_PATH", x) for x in injected),
            severity=Severity.INFO,
        ))
    return out


