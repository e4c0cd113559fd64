"""Read the dynamic loader's own account in a log: `LD_DEBUG=libs` traces and `ldd` output.

Which CUDA library was searched for, which folder answered, and whether that folder is a pip wheel's
`site-packages/nvidia/*/lib` or a system toolkit (LD_DEBUG: https://man7.org/linux/man-pages/man8/ld.so.8.html;
jax's pip wheels: https://docs.jax.dev/en/latest/installation.html#pip-installation-nvidia-gpu-cuda-installed-via-pip-easier).
Stdlib only.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from posixpath import normpath

from ..findings import Area, EnvOp, EnvOpKind, Finding, Fix, Severity

_PID = r"^\s*\d+:\s+"
_FIND = re.compile(_PID + r"find library=(?P<lib>\S+) \[\d+\]; searching")
_SEARCH = re.compile(_PID + r"search (?:path|cache)=(?P<path>\S+)\s*(?:\((?P<why>[^)]*)\))?")
_TRYING = re.compile(_PID + r"trying file=(?P<file>\S+)")
_INIT = re.compile(_PID + r"calling init: (?P<file>\S+)")
_LDD = re.compile(r"^\s*(?P<lib>lib[\w+.-]+\.so[\w.]*) => (?:(?P<file>/\S+) \(0x[0-9a-f]+\)|(?P<missing>not found))")
_CUDA_LIB = re.compile(r"^lib(cudnn\w*|cublas\w*|cusparse\w*|cusolver\w*|cufft\w*|cudart|nvrtc\w*|nvJitLink|nccl|"
                       r"cupti|curand|nvToolsExt)\.so")
_WHEEL = re.compile(r"(?:site|dist)-packages/nvidia/(?P<part>[\w]+)/lib")


_WHEEL_NAMES = {"cudart": "cuda-runtime", "nvrtc": "cuda-nvrtc", "cupti": "cuda-cupti", "nvtoolsext": "nvtx"}


class Origin(str, enum.Enum):
    """Where a library file lives."""

    PIP_WHEEL = "pip wheel"  # .../site-packages/nvidia/<part>/lib
    SYSTEM = "system toolkit"  # /usr/local/cuda*, /usr/lib/x86_64-linux-gnu, /usr/lib64, /opt/...
    CONDA = "conda"
    OTHER = "other folder"


class LoaderKind(str, enum.Enum):
    """The finding ids this module produces."""

    OUTSIDE_WHEELS = "log-cuda-lib-outside-wheels"
    NOT_FOUND = "log-cuda-lib-not-found"


def origin(path: str) -> Origin:
    path = _norm(path)
    if _WHEEL.search(path):
        return Origin.PIP_WHEEL
    if re.search(r"/(?:ana|mini)?conda\d?/|/mambaforge/|/miniforge\d?/|/envs/[^/]+/lib/|/conda/", path):
        return Origin.CONDA
    if re.match(r"/usr/local/cuda|/usr/lib|/lib|/opt/|/usr/local/lib", path):
        return Origin.SYSTEM
    return Origin.OTHER


@dataclass
class Lookup:
    """One library the loader looked for."""

    lib: str
    tried: list[str] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)
    """Each search path with its reason ('LD_LIBRARY_PATH', 'RUNPATH from file ...')."""
    loaded: str | None = None
    missing: bool = False

    @property
    def folder(self) -> str | None:
        return str(PurePosixPath(self.loaded).parent) if self.loaded else None


def _ld_debug(text: str) -> list[Lookup]:
    found: list[Lookup] = []
    inits: dict[str, str] = {}
    for line in text.splitlines():
        if m := _FIND.match(line):
            found.append(Lookup(m["lib"]))
        elif (m := _SEARCH.match(line)) and found:
            found[-1].searched.append(f"{_norm(m['path'])} ({m['why'] or 'cache'})")
        elif (m := _TRYING.match(line)) and found:
            found[-1].tried.append(_norm(m["file"]))
        elif m := _INIT.match(line):
            inits.setdefault(PurePosixPath(m["file"]).name, _norm(m["file"]))
    for lk in found:
        failed = re.search(re.escape(lk.lib) + r": cannot open shared object file", text)
        # LD_DEBUG prints no "found" line: the file whose init ran, else the last file tried (unless dlopen failed)
        lk.loaded = inits.get(lk.lib) or (lk.tried[-1] if lk.tried and not failed else None)
        lk.missing = not lk.loaded and bool(failed)
    return found


def _ldd(text: str) -> list[Lookup]:
    return [Lookup(m["lib"], loaded=m["file"], missing=bool(m["missing"]))
            for m in map(_LDD.match, text.splitlines()) if m]


def lookups(text: str) -> list[Lookup]:
    """Each library looked up once (the first lookup that found it, else the last attempt)."""
    out: dict[str, Lookup] = {}
    for lk in _ld_debug(text) + _ldd(text):
        if lk.lib not in out or (lk.loaded and not out[lk.lib].loaded):
            out[lk.lib] = lk
    return list(out.values())


def _norm(paths: str) -> str:
    """Each of ``a:b`` without `..` (a RUNPATH of `$ORIGIN/../nvidia/cublas/lib` is searched as
    `.../site-packages/jax_plugins/xla_cuda12/../nvidia/...`)."""
    return ":".join(normpath(p) if p.startswith("/") else p for p in paths.split(":"))


_IN_WHEEL = re.compile(r"(?:site|dist)-packages/(?:[^/]{1,200}/){0,8}?nvidia/\w{1,60}/lib(?=/|$)")


def _wheel_folders(text: str) -> list[str]:
    """The NVIDIA wheels' lib folders a log names (`.../site-packages/nvidia/cublas/lib`), read token by token: a
    path never spans whitespace or a `:`, and reading each token once keeps this linear on any line."""
    seen: list[str] = []
    if "nvidia/" not in text or "-packages/" not in text:
        return seen
    for line in text.splitlines():
        if "nvidia/" not in line or "-packages/" not in line:
            continue
        for token in re.split(r"[\s:]", line):
            start = token.find("/")
            m = _IN_WHEEL.search(token, start) if start != -1 and "nvidia/" in token else None
            if not m:
                continue
            path = _norm(token[start:m.end()])
            if _WHEEL.search(path) and path not in seen:
                seen.append(path)
    return seen


def loader_findings(text: str, name: str = "log") -> list[Finding]:
    cuda = [lk for lk in lookups(text) if _CUDA_LIB.match(lk.lib)]
    wheels = _wheel_folders(text)
    out: list[Finding] = []
    for lk in cuda:
        if lk.loaded and wheels and origin(lk.loaded) is not Origin.PIP_WHEEL:
            out.append(_outside(lk, wheels, name))
        elif lk.missing or (not lk.loaded and lk.tried):
            out.append(_missing(lk, wheels, name))
    return out


def _outside(lk: Lookup, wheels: list[str], name: str) -> Finding:
    via_ld_path = [s for s in lk.searched if "LD_LIBRARY_PATH" in s and (lk.folder or "") in s]
    ops = (EnvOp(EnvOpKind.REMOVE, "LD_LIBRARY_PATH", lk.folder or ""),) if via_ld_path else ()
    return Finding(
        LoaderKind.OUTSIDE_WHEELS.value, Severity.ERROR, Area.LOG,
        f"{lk.lib} was loaded from {lk.folder} ({origin(lk.loaded or '').value}), not from the pip NVIDIA wheels "
        f"this environment has", (f"{name}: loaded {lk.loaded}", *(f"{name}: searched {s}" for s in lk.searched[:3]),
                                  f"{name}: pip wheel folders in the trace: {', '.join(wheels[:4])}"),
        Fix(f"let the wheels' copy win: drop {lk.folder} from LD_LIBRARY_PATH (or put the wheel folders first); "
            "`bdv2 doctor --fix` does this on that environment", ("bdv2 doctor --fix",), env_ops=ops),
        source="https://docs.jax.dev/en/latest/installation.html#pip-installation-nvidia-gpu-cuda-installed-via-pip-easier",
        packages=("jaxlib",))


def _missing(lk: Lookup, wheels: list[str], name: str) -> Finding:
    part = (_CUDA_LIB.match(lk.lib) or re.match("lib(.*)", lk.lib))
    stem = re.sub(r"(Lt|_\w+|\d+)$", "", part[1] if part else lk.lib).lower()
    stem = _WHEEL_NAMES.get(stem, stem)
    return Finding(
        LoaderKind.NOT_FOUND.value, Severity.ERROR, Area.LOG, f"{lk.lib} was not found by the loader",
        (f"{name}: {lk.lib} => not found", *(f"{name}: tried {t}" for t in lk.tried[-3:]),
         *(f"{name}: searched {s}" for s in lk.searched[:3])),
        Fix(f"install the pip wheel that ships it (nvidia-{stem}-cu12 or -cu13, matching the jax CUDA "
            "plugin) or add its folder to LD_LIBRARY_PATH; `bdv2 doctor` lists the CUDA libraries it finds",
            ("bdv2 doctor",)),
        source="https://docs.jax.dev/en/latest/installation.html#pip-installation-nvidia-gpu-cuda-installed-via-pip-easier",
        packages=("jaxlib",))
