"""Built-in checks over the system facts: CUDA library copies, the driver, CUDA tools, env variables.

Which copy of a CUDA library a process loads depends on how the installed jaxlib finds them
(compat.md §2.3): jaxlib <= 0.4.18 CUDA builds carry a RUNPATH to the pip wheels, so LD_LIBRARY_PATH
wins; 0.4.19 - 0.6.1 carry an RPATH, so the wheels win; from 0.6.2 the plugin preloads the wheels by
absolute path. glibc keeps the first copy of a soname a process loads, whoever loaded it.
"""

from __future__ import annotations

import re
from typing import Any

from packaging.version import InvalidVersion, Version

from .findings import EnvOp, EnvOpKind, Finding, Severity
from .matrix import Matrix, Rule
from .rules import PIP, _finding, public
from .snapshot import Snapshot
from .system import parse_lib_name

# Library stem -> the pip wheel that ships it, for CUDA 12 and CUDA 13.
_WHEELS = {
    "libcudnn": ("nvidia-cudnn-cu12", "nvidia-cudnn-cu13"),
    "libcublas": ("nvidia-cublas-cu12", "nvidia-cublas"),
    "libcublasLt": ("nvidia-cublas-cu12", "nvidia-cublas"),
    "libcusparse": ("nvidia-cusparse-cu12", "nvidia-cusparse"),
    "libcusolver": ("nvidia-cusolver-cu12", "nvidia-cusolver"),
    "libcufft": ("nvidia-cufft-cu12", "nvidia-cufft"),
    "libnvJitLink": ("nvidia-nvjitlink-cu12", "nvidia-nvjitlink"),
    "libcudart": ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime"),
    "libnccl": ("nvidia-nccl-cu12", "nvidia-nccl-cu13"),
    "libnvrtc": ("nvidia-cuda-nvrtc-cu12", "nvidia-cuda-nvrtc"),
    "libcupti": ("nvidia-cuda-cupti-cu12", "nvidia-cuda-cupti"),
}
_PTXAS_WHEELS = ("nvidia-cuda-nvcc-cu12", "nvidia-cuda-nvcc")


def _v(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def gpu_backend(snap: Snapshot) -> tuple[str, Version | None]:
    """('plugin12'|'plugin13'|'monolithic'|'', version) of the installed JAX CUDA backend."""
    for cuda in ("13", "12"):
        p = snap.dist(f"jax-cuda{cuda}-plugin")
        if p is not None and p.parsed is not None:
            return f"plugin{cuda}", public(p.parsed)
    lib = snap.dist("jaxlib")
    if lib is not None and "cuda" in lib.version and lib.parsed is not None:
        return "monolithic", public(lib.parsed)
    return "", None


def lookup_era(snap: Snapshot) -> str:
    """How the installed JAX CUDA backend finds its libraries: runpath, rpath, preload, or '' (no GPU)."""
    kind, v = gpu_backend(snap)
    if not kind or v is None:
        return ""
    if v >= Version("0.6.2"):
        return "preload"
    if v >= Version("0.4.19"):
        return "rpath"
    return "runpath"


def _pip_libs(snap: Snapshot) -> dict[str, tuple[str, str]]:
    """stem -> (pip lib dir, soname) for the wheels' libraries."""
    out: dict[str, tuple[str, str]] = {}
    for d in snap.nvidia_libs:
        for name in d.files:
            parsed = parse_lib_name(name)
            if parsed and parsed[0] not in out:
                out[parsed[0]] = (d.dir, name)
    return out


def _wheel(snap: Snapshot, stem: str) -> str:
    for name in _WHEELS.get(stem, ()):
        d = snap.dist(name)
        if d is not None:
            return f"{d.name} {d.version}"
    return "a pip wheel"


def _major(version: str) -> str:
    return version.split(".")[0] if version else ""


def check_cuda_lib_shadowing(rule: Rule, snap: Snapshot, matrix: Matrix) -> list[Finding]:
    """A LD_LIBRARY_PATH folder holding another copy of a library that a pip CUDA wheel provides."""
    era = lookup_era(snap)
    pip = _pip_libs(snap)
    out: list[Finding] = []
    ld: list[dict[str, Any]] = snap.system.get("ld_library_path", [])
    for entry in ld:
        d = entry["dir"]
        if "/site-packages/nvidia/" in d + "/":
            continue  # the wheels' own folders, injected by hand (the set-up guide's use_pip_cuda_libs)
        clashes = []
        for lib in entry.get("libs", []):
            stem = lib["stem"]
            if stem in pip and lib["name"].startswith(pip[stem][1].split(".so")[0] + ".so"):
                pip_soname = pip[stem][1]
                same_major = _major(parse_lib_name(pip_soname)[1]) == _major(lib["version"])  # type: ignore[index]
                if same_major or not lib["version"]:
                    clashes.append((stem, lib))
        if not clashes or not era:
            continue
        seen = sorted({stem for stem, _ in clashes})
        ev = [f"{d}: {lib['name']}" + (f" ({lib['version']})" if lib["version"] else "") for _, lib in clashes]
        ev += [f"pip: {pip[s][0]}/{pip[s][1]} from {_wheel(snap, s)}" for s in seen]
        if era == "runpath":
            dirs = sorted({pip[s][0] for s in seen})
            out.append(_finding(
                rule, f"LD_LIBRARY_PATH folder {d} shadows the pip CUDA wheels ({', '.join(seen)})", ev,
                "put the pip wheels' folders first on LD_LIBRARY_PATH: this jaxlib (<= 0.4.18) finds its "
                "libraries through a RUNPATH, which LD_LIBRARY_PATH overrides",
                env_ops=tuple(EnvOp(EnvOpKind.PREPEND, "LD_LIBRARY_PATH", x) for x in dirs),
                severity=Severity.ERROR,
            ))
        else:
            how = "preloads the pip wheels" if era == "preload" else "prefers the pip wheels (RPATH)"
            out.append(_finding(
                rule, f"LD_LIBRARY_PATH folder {d} holds other copies of {', '.join(seen)}", ev,
                f"remove it from LD_LIBRARY_PATH: JAX {how}, but a library loaded earlier by TensorFlow or "
                "PyTorch from this folder wins (glibc keeps the first copy of a soname)",
                env_ops=(EnvOp(EnvOpKind.REMOVE, "LD_LIBRARY_PATH", d),), severity=Severity.WARNING,
            ))
    if era == "preload" and any("/site-packages/nvidia/" in e["dir"] + "/" for e in ld):
        injected = [e["dir"] for e in ld if "/site-packages/nvidia/" in e["dir"] + "/"]
        out.append(_finding(
            rule, "LD_LIBRARY_PATH lists the pip CUDA wheels' folders, which this jax does not need", injected,
            "drop them: jax >= 0.6.2 loads the wheels itself; keeping them only matters to other programs",
            env_ops=tuple(EnvOp(EnvOpKind.REMOVE, "LD_LIBRARY_PATH", x) for x in injected),
            severity=Severity.INFO,
        ))
    return out


def _system_copies(snap: Snapshot, stem: str) -> list[dict[str, str]]:
    copies = [lib for e in snap.system.get("ld_library_path", []) for lib in e.get("libs", []) if lib["stem"] == stem]
    conda = snap.system.get("conda_lib") or {}
    copies += [lib for lib in conda.get("libs", []) if lib["stem"] == stem]
    copies += [lib for lib in snap.system.get("ldconfig", []) if lib["stem"] == stem]
    return copies


def check_cuda_libs_found(rule: Rule, snap: Snapshot, matrix: Matrix) -> list[Finding]:
    """A JAX CUDA backend without cuDNN anywhere, or with only a system cuDNN that is too old."""
    kind, v = gpu_backend(snap)
    if not kind or v is None:
        return []
    if "libcudnn" in _pip_libs(snap) or snap.dist("nvidia-cudnn-cu12") or snap.dist("nvidia-cudnn-cu13"):
        return []
    want_major = "9" if v >= Version("0.4.29") else "8"
    floor = "9.8" if v >= Version("0.6.0") else ("9.1" if v >= Version("0.4.31") else want_major)
    copies = [c for c in _system_copies(snap, "libcudnn") if _major(c["version"]) == want_major]
    wheel = "nvidia-cudnn-cu13" if kind == "plugin13" else "nvidia-cudnn-cu12"
    spec = f">={floor},<{int(want_major) + 1}"
    if not copies:
        title = f"no cuDNN {want_major} for jax's CUDA backend ({kind} {v}): JAX will fall back to the CPU"
        return [_finding(rule, title,
                         ["searched: the pip wheels, LD_LIBRARY_PATH, $CONDA_PREFIX/lib, the ldconfig cache"],
                         "install the cuDNN wheel", (f'{PIP} install "{wheel}{spec}"',), severity=Severity.ERROR)]
    best = copies[0]
    bv = _v(best["version"])
    if bv is not None and len(best["version"].split(".")) > 1 and bv < Version(floor):
        title = f"the system cuDNN {best['version']} ({best['path']}) is older than the {floor} jax {v} needs"
        return [_finding(rule, title,
                         [f"{best['path']}: {best['version']}"], "install the cuDNN wheel (it is then preferred)",
                         (f'{PIP} install "{wheel}{spec}"',), severity=Severity.ERROR)]
    return []


def _cuda_major_of_backend(snap: Snapshot) -> int:
    kind, _ = gpu_backend(snap)
    return 13 if kind == "plugin13" else 12 if kind else 0


def _ptxas(snap: Snapshot) -> tuple[str, str]:
    """(release like '12.9', where) of the ptxas XLA will run."""
    for name in _PTXAS_WHEELS:
        d = snap.dist(name)
        if d is not None and d.parsed is not None and not snap.env.get("CUDA_ROOT"):
            return ".".join(str(x) for x in d.parsed.release[:2]), f"pip wheel {d.name} {d.version}"
    tool = snap.system.get("tools", {}).get("ptxas")
    if tool and tool.get("release"):
        return tool["release"], tool["path"]
    return "", ""


def _rel(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:2])


def check_driver(rule: Rule, snap: Snapshot, matrix: Matrix) -> list[Finding]:
    drv: dict[str, Any] = snap.system.get("driver", {})
    out: list[Finding] = []
    major = _cuda_major_of_backend(snap)
    err = drv.get("error", "")
    if "mismatch" in err.lower():
        out.append(_finding(rule, "the NVIDIA kernel module and the user-space driver differ", [err],
                            "reboot (or reload the nvidia kernel modules) so both are the installed version",
                            severity=Severity.ERROR))
    kmod, version = drv.get("kernel_module", ""), drv.get("version", "")
    if kmod and version and kmod != version:
        out.append(_finding(rule, f"kernel module {kmod} but user-space driver {version}",
                            [f"/proc/driver/nvidia/version: {kmod}", f"nvidia-smi: {version}"],
                            "reboot (or reload the nvidia kernel modules)", severity=Severity.ERROR))
    if not version:
        return out
    dv = _v(version)
    if dv is not None and major == 12 and dv < Version("525.60.13"):
        out.append(_finding(rule, f"driver {version} is too old for CUDA 12 (needs >= 525.60.13)",
                            [f"driver {version} (CUDA {drv.get('cuda') or '?'})"],
                            "upgrade the NVIDIA driver, or use the CUDA forward-compatibility package",
                            severity=Severity.ERROR))
    if dv is not None and major == 13 and dv < Version("580"):
        out.append(_finding(rule, f"driver {version} is too old for CUDA 13 (needs >= 580)",
                            [f"driver {version} (CUDA {drv.get('cuda') or '?'})"],
                            "upgrade the driver to >= 580, or use jax[cuda12]",
                            (f'{PIP} uninstall -y jax-cuda13-plugin jax-cuda13-pjrt', f'{PIP} install "jax[cuda12]"'),
                            severity=Severity.ERROR))
    ptxas, where = _ptxas(snap)
    cuda = drv.get("cuda", "")
    too_old = any("too old for CUDA" in f.title for f in out)
    if major and ptxas and cuda and _rel(cuda) < _rel(ptxas) and not too_old:
        # A ptxas matching the driver is only an option where the plugin accepts it (>= 12.6.85).
        cmds = (f'{PIP} install "nvidia-cuda-nvcc-cu12=={cuda}.*"',) if _rel(cuda) >= (12, 6) and major == 12 else ()
        out.append(_finding(
            rule, f"the driver's CUDA {cuda} is older than ptxas {ptxas}: XLA turns parallel compilation off",
            [f"driver {version}: CUDA {cuda}", f"ptxas {ptxas}: {where}"],
            "upgrade the driver (or use NVIDIA's CUDA forward-compatibility package)"
            + ("; or install the ptxas of the driver's CUDA" if cmds else ""), cmds, severity=Severity.WARNING))
    gpus = drv.get("gpus", [])
    jax, jaxlib = snap.dist("jax"), snap.dist("jaxlib")
    if gpus and not major and jax is not None:
        title = f"{len(gpus)} GPU(s) ({gpus[0]['name']}) but jax has no CUDA backend: it runs on the CPU"
        out.append(_finding(rule, title,
                            [f"jaxlib {jaxlib.version if jaxlib else '-'}", f"driver {version}"],
                            "install jax's CUDA 12 extra", (f'{PIP} install "jax[cuda12]=={jax.version}"',),
                            severity=Severity.ERROR))
    floor = {12: (5, 2), 13: (7, 5)}.get(major)
    for g in gpus:
        cc = _rel(g.get("compute_cap", ""))
        if floor and len(cc) == 2 and cc < floor:
            out.append(_finding(rule, f"{g['name']} (compute capability {g['compute_cap']}) is below CUDA {major}'s "
                                f"minimum {floor[0]}.{floor[1]}", [f"GPU {g['name']}"],
                                "use jax[cuda12] (SM >= 5.2) or an older jax for this GPU", severity=Severity.ERROR))
    return out


def check_cuda_tools(rule: Rule, snap: Snapshot, matrix: Matrix) -> list[Finding]:
    major = _cuda_major_of_backend(snap)
    if not major:
        return []
    tools: dict[str, dict[str, str]] = snap.system.get("tools", {})
    out: list[Finding] = []
    ptxas, where = _ptxas(snap)
    nvlink = tools.get("nvlink", {})
    if ptxas and nvlink.get("release") and _rel(nvlink["release"]) < _rel(ptxas):
        p, n = "".join(ptxas.split(".")[:2]), "".join(nvlink["release"].split(".")[:2])
        out.append(_finding(
            rule, f"nvlink {nvlink['release']} ({nvlink['path']}) is older than ptxas {ptxas}: expect "
            f"'nvlink fatal : Input file ... newer than toolkit ({p} vs {n})'",
            [f"ptxas {ptxas}: {where}", f"nvlink {nvlink['release']}: {nvlink['path']}"],
            "compile without the linking step (slower compiles), or take the old CUDA bin folder "
            f"{nvlink['path'].rsplit('/', 1)[0]} off PATH",
            env_ops=(EnvOp(EnvOpKind.SET, "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=1"),),
            severity=Severity.ERROR))
    if not ptxas and not snap.system.get("local_cuda_ptxas"):
        title = "no ptxas found for XLA (no nvidia-cuda-nvcc wheel, none on PATH or in /usr/local/cuda)"
        out.append(_finding(rule, title,
                            ["searched: the pip wheel, PATH, /usr/local/cuda/bin"], "install the pip ptxas",
                            (f'{PIP} install "nvidia-cuda-nvcc-cu12>=12.6.85"' if major == 12
                             else f'{PIP} install "nvidia-cuda-nvcc>=13.0.48"',), severity=Severity.WARNING))
    flags = snap.env.get("XLA_FLAGS", "")
    if "xla_gpu_cuda_data_dir" in flags and any(snap.dist(n) for n in _PTXAS_WHEELS):
        out.append(_finding(rule, "--xla_gpu_cuda_data_dir in XLA_FLAGS is overridden by JAX",
                            [f"XLA_FLAGS={flags}"],
                            "JAX sets the CUDA data dir itself when the nvidia-cuda-nvcc wheel is installed; set "
                            "CUDA_ROOT instead (jax >= 0.4.35)", severity=Severity.WARNING))
    return out


def _visible_gpus(snap: Snapshot) -> tuple[int, str]:
    """How many GPUs a process started with this environment sees, and why we think so."""
    cvd = snap.env.get("CUDA_VISIBLE_DEVICES")
    gpus = snap.system.get("driver", {}).get("gpus", [])
    if cvd is not None:
        ids = [x for x in cvd.split(",") if x.strip()]
        n = len(ids)
        if "-1" in [x.strip() for x in ids]:  # CUDA stops at the first invalid id
            n = [x.strip() for x in ids].index("-1")
        if gpus:
            n = min(n, len(gpus))
        return n, f"CUDA_VISIBLE_DEVICES={cvd!r}" + (f" of {len(gpus)} GPU(s)" if gpus else "")
    return len(gpus), f"{len(gpus)} GPU(s) reported by the driver"


def check_env_vars(rule: Rule, snap: Snapshot, matrix: Matrix) -> list[Finding]:
    env = snap.env
    out: list[Finding] = []
    gpu_jax = bool(gpu_backend(snap)[0])
    if "JAX_PLATFORM_NAME" in env:
        value = env["JAX_PLATFORM_NAME"]
        ops = [EnvOp(EnvOpKind.UNSET, "JAX_PLATFORM_NAME")]
        if "JAX_PLATFORMS" not in env and value:
            ops.append(EnvOp(EnvOpKind.SET, "JAX_PLATFORMS", value))
        out.append(_finding(rule, f"JAX_PLATFORM_NAME={value} is the deprecated spelling of JAX_PLATFORMS",
                            [f"JAX_PLATFORM_NAME={value}"] + ([f"JAX_PLATFORMS={env['JAX_PLATFORMS']}"]
                                                              if "JAX_PLATFORMS" in env else []),
                            "use JAX_PLATFORMS (it also skips the CUDA checks when cuda is not listed)",
                            env_ops=tuple(ops), severity=Severity.WARNING))
    platforms = (env.get("JAX_PLATFORMS") or env.get("JAX_PLATFORM_NAME") or "").lower()
    wants_gpu = any(p.strip() in ("cuda", "gpu") for p in platforms.split(","))
    if wants_gpu and not gpu_jax and snap.dist("jax"):
        out.append(_finding(rule, f"JAX_PLATFORMS={platforms} asks for the GPU, but jax has no CUDA backend installed",
                            [f"JAX_PLATFORMS={platforms}"], "install jax's CUDA extra, or ask for cpu",
                            (f'{PIP} install "jax[cuda12]=={snap.dist("jax").version}"',),  # type: ignore[union-attr]
                            severity=Severity.ERROR))
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None and cvd.strip() in ("", "-1") and gpu_jax:
        out.append(_finding(rule, f"CUDA_VISIBLE_DEVICES={cvd!r} hides every GPU, from JAX too",
                            [f"CUDA_VISIBLE_DEVICES={cvd!r}"],
                            "unset it; to keep only TensorFlow off the GPU use tensorflow-cpu or "
                            "tf.config.set_visible_devices([], 'GPU')",
                            env_ops=(EnvOp(EnvOpKind.UNSET, "CUDA_VISIBLE_DEVICES"),), severity=Severity.WARNING))
    if env.get("JAX_SKIP_CUDA_CONSTRAINTS_CHECK"):
        out.append(_finding(rule, "JAX_SKIP_CUDA_CONSTRAINTS_CHECK hides CUDA library version errors",
                            ["JAX_SKIP_CUDA_CONSTRAINTS_CHECK=" + env["JAX_SKIP_CUDA_CONSTRAINTS_CHECK"]],
                            "unset it once the libraries match", severity=Severity.INFO,
                            env_ops=(EnvOp(EnvOpKind.UNSET, "JAX_SKIP_CUDA_CONSTRAINTS_CHECK"),)))
    frac = env.get("XLA_PYTHON_CLIENT_MEM_FRACTION")
    if frac is not None:
        try:
            ok = 0.0 < float(frac) <= 1.0
        except ValueError:
            ok = False
        if not ok:
            out.append(_finding(rule, f"XLA_PYTHON_CLIENT_MEM_FRACTION={frac!r} is not a fraction in (0, 1]",
                                [f"XLA_PYTHON_CLIENT_MEM_FRACTION={frac!r}"], "set a value such as .75, or unset it",
                                env_ops=(EnvOp(EnvOpKind.UNSET, "XLA_PYTHON_CLIENT_MEM_FRACTION"),),
                                severity=Severity.ERROR))
    flags = env.get("XLA_FLAGS", "")
    bad = [t for t in flags.split() if not t.startswith("--")]
    unknown = (snap.system.get("xla_flags") or {}).get("unknown", [])
    if bad or unknown:
        keep = [t for t in flags.split() if t.startswith("--") and t[2:].split("=", 1)[0] not in unknown]
        out.append(_finding(rule, "XLA_FLAGS holds " + ", ".join(
            ([f"flags this jaxlib does not know ({', '.join(unknown)})"] if unknown else [])
            + ([f"tokens that are not --flags ({', '.join(bad)})"] if bad else [])) + ": XLA aborts at start-up",
            [f"XLA_FLAGS={flags}", f"checked against {(snap.system.get('xla_flags') or {}).get('scanned', '-')}"],
            "drop them (TensorFlow's own XLA parses XLA_FLAGS too and aborts on unknown names)",
            env_ops=(EnvOp(EnvOpKind.SET, "XLA_FLAGS", " ".join(keep)),) if keep else
            (EnvOp(EnvOpKind.UNSET, "XLA_FLAGS"),), severity=Severity.ERROR))
    batch = snap.system.get("batch_size")
    if batch:
        devices, where = _visible_gpus(snap)
        if devices and batch % devices:
            fits = next(n for n in range(devices, 0, -1) if batch % n == 0)
            out.append(_finding(
                rule, f"batch size {batch} does not divide over the {devices} visible GPUs", [where],
                f"use a batch that is a multiple of {devices}, or make {fits} GPU(s) visible "
                f"(CUDA_VISIBLE_DEVICES={','.join(str(i) for i in range(fits))})", severity=Severity.ERROR))
    tf = snap.dist("tensorflow") or snap.dist("tensorflow-gpu")
    if tf is not None and gpu_jax and env.get("XLA_PYTHON_CLIENT_PREALLOCATE", "").lower() not in ("false", "0") \
            and env.get("TF_FORCE_GPU_ALLOW_GROWTH", "").lower() != "true":
        out.append(_finding(rule, "TensorFlow's GPU build and JAX share the GPU with default memory settings",
                            [f"{tf.name} {tf.version}", "XLA_PYTHON_CLIENT_PREALLOCATE unset (JAX takes 75% at start)",
                             "TF_FORCE_GPU_ALLOW_GROWTH unset (TF takes what is left)"],
                            "keep TF off the GPU (tensorflow-cpu, or tf.config.set_visible_devices([], 'GPU') before "
                            "any TF op); at least let TF grow its memory",
                            env_ops=(EnvOp(EnvOpKind.SET, "TF_FORCE_GPU_ALLOW_GROWTH", "true"),),
                            severity=Severity.WARNING))
    return out
