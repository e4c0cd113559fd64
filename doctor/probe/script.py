"""Stdlib-only probe, run inside the examined interpreter: prints one JSON object of facts.

It must run on any Python the user may point ``--python`` at (3.8 and newer), import nothing
outside the standard library, and never import the packages it describes: it reads their
installed metadata only. ``collect.py`` runs it in-process for the doctor's own interpreter and
as ``python probe_script.py`` for another one.
"""

import glob
import json
import os
import platform
import re
import site
import sys

# Environment variables the rules look at; XLA_*, NCCL_* and TensorFlow's TF_* are added by prefix.
ENV_NAMES = (
    "LD_LIBRARY_PATH", "PATH", "CUDA_VISIBLE_DEVICES", "JAX_PLATFORMS", "JAX_PLATFORM_NAME",
    "JAX_CUDA_VISIBLE_DEVICES", "JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "CUDA_ROOT", "CUDA_HOME",
    "CUDA_PATH", "CONDA_PREFIX", "VIRTUAL_ENV", "PYTHONPATH", "LD_PRELOAD",
)
# TensorFlow's variables by prefix (not all of TF_*: Terraform uses TF_VAR_*, TF_TOKEN_*, TF_CLI_*).
ENV_PREFIXES = ("XLA_", "NCCL_", "TF_CPP_", "TF_GPU_", "TF_XLA_", "TF_CUDNN_", "TF_FORCE_", "TF_ENABLE_",
                "TF_USE_", "TF_DETERMINISTIC", "TF_NUM_")


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _markers():
    impl = sys.implementation
    iver = f"{impl.version.major}.{impl.version.minor}.{impl.version.micro}"
    if impl.version.releaselevel != "final":
        iver += impl.version.releaselevel[0] + str(impl.version.serial)
    return {
        "implementation_name": impl.name,
        "implementation_version": iver,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def _site_dirs():
    dirs = []
    try:
        dirs.extend(site.getsitepackages())
    except AttributeError:  # old virtualenv's site.py
        pass
    try:
        dirs.append(site.getusersitepackages())
    except AttributeError:
        pass
    for p in sys.path:
        if p and p.rstrip("/").endswith(("site-packages", "dist-packages")):
            dirs.append(p)
    seen, out = set(), []
    for d in dirs:
        d = os.path.abspath(d)
        if d not in seen and os.path.isdir(d):
            seen.add(d)
            out.append(d)
    return out


def _headers(text):
    """Core-metadata headers (up to the first blank line). The email parser that importlib.metadata
    uses reads the whole long description too, which made it the doctor's slowest step."""
    out, key = {}, None
    end = text.find("\n\n")  # a blank line: the headers end there at the latest (the description follows)
    for line in (text if end < 0 else text[:end]).splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and key:
            out[key][-1] += " " + line.strip()
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        out.setdefault(key, []).append(value.strip())
    return out


def _read_dist(dist):
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    h = _headers(text)
    name = (h.get("name") or [""])[0]
    version = (h.get("version") or [""])[0]
    requires = h.get("requires-dist", [])
    if not requires and dist.read_text("requires.txt"):  # egg-info keeps requirements apart
        try:
            requires = list(dist.requires or [])
        except Exception:
            requires = []
    return name, version, requires


class _DistInfo(object):
    """A .dist-info folder, read as importlib.metadata's PathDistribution reads one (``read_text``, ``_path``);
    importlib.metadata (and the email package it loads) is imported only if ``requires`` is asked."""

    def __init__(self, path):
        self._path = path

    def read_text(self, filename):
        try:
            with open(os.path.join(str(self._path), filename), encoding="utf-8") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, KeyError, NotADirectoryError, PermissionError):
            return None

    @property
    def requires(self):
        from importlib import metadata

        return metadata.PathDistribution(self._path).requires


def _plain_distributions(path):
    """What ``importlib.metadata.distributions(path=path)`` finds, in its order (Python 3.10 and newer: per path
    entry, the .dist-info folders grouped by normalised name in the order first listed), read the same way; None
    where it would find something this does not read (a zip or an .egg on the path, an .egg-info, a finder of
    distributions besides the path's): then importlib.metadata itself reads them."""
    import pathlib
    from importlib.machinery import PathFinder

    if any(getattr(f, "find_distributions", None) for f in sys.meta_path if f is not PathFinder):
        return None
    out = []
    for root in path:
        try:
            children = os.listdir(root or ".")
        except Exception:
            if os.path.exists(root):
                return None  # a zip: importlib.metadata reads its members
            continue
        if os.path.basename(root).lower().endswith(".egg"):
            return None
        groups = {}
        for child in children:
            low = child.lower()
            if low.endswith(".egg-info"):
                return None
            if low.endswith(".dist-info"):
                name = low.rpartition(".")[0].partition("-")[0]
                key = re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")
                groups.setdefault(key, []).append(_DistInfo(pathlib.Path(root, child)))
        for dists in groups.values():
            out.extend(dists)
    return out


def own_requires(name):
    """``importlib.metadata.requires(name)`` of this interpreter (the first distribution of that name on sys.path;
    None when there is none), its Requires-Dist read as the probe reads them (``_read_dist``)."""
    dists = _plain_distributions(sys.path)
    if dists is None:
        from importlib import metadata

        try:
            return metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            return None
    wanted = re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")
    for dist in dists:
        stem = dist._path.name.lower().rpartition(".")[0].partition("-")[0]
        if re.sub(r"[-_.]+", "-", stem).lower().replace("-", "_") == wanted:
            return _read_dist(dist)[2]
    return None


def _distributions(path, plain=False):
    """Installed distributions in import order: the first one on sys.path wins, the rest are shadowed.
    ``plain``: enumerate them with ``_plain_distributions`` where it can (the doctor's own interpreter, whose
    importlib.metadata it follows: tests/doctor/test_collect.py compares the two)."""
    dists = _plain_distributions(path) if plain else None
    if dists is None:
        from importlib import metadata

        dists = metadata.distributions(path=path)
    found, shadowed = {}, []
    for dist in dists:
        try:
            name, version, requires = _read_dist(dist)
        except Exception:  # an unreadable dist-info: skip it rather than fail the whole probe
            continue
        if not name:
            continue
        key = _normalise(name)
        location = ""
        dist_path = getattr(dist, "_path", None)
        if dist_path is not None:
            location = str(dist_path.parent)
        entry = {
            "name": name,
            "version": version,
            "requires": requires,
            "location": location,
            "installer": ((dist.read_text("INSTALLER") or "").strip()),
        }
        if key in found:
            if found[key]["location"] != location or found[key]["version"] != entry["version"]:
                shadowed.append(entry)
            continue
        found[key] = entry
    return list(found.values()), shadowed


def _nvidia_libs(site_dirs):
    """Files under the pip CUDA wheels' lib folders: site-packages/nvidia/<component>/lib/*.so*."""
    out = []
    for d in site_dirs:
        for lib_dir in sorted(glob.glob(os.path.join(d, "nvidia", "*", "lib"))):
            names = sorted(n for n in os.listdir(lib_dir) if ".so" in n)
            out.append({"dir": lib_dir, "files": names})
        # CUDA 13 wheels put everything under nvidia/cu13/lib
        for lib_dir in sorted(glob.glob(os.path.join(d, "nvidia", "cu13", "lib"))):
            if not any(e["dir"] == lib_dir for e in out):
                out.append({"dir": lib_dir, "files": sorted(os.listdir(lib_dir))})
    return out


def environment():
    """The environment variables the rules look at."""
    return {k: v for k, v in os.environ.items() if k in ENV_NAMES or k.startswith(ENV_PREFIXES)}


def site_dirs():
    return _site_dirs()


def probe(plain=False):
    path = [p for p in sys.path if p]
    dists, shadowed = _distributions(path, plain)
    site_dirs = _site_dirs()
    env = environment()
    prefix = sys.prefix
    return {
        "python": {
            "version": platform.python_version(),
            "executable": sys.executable,
            "prefix": prefix,
            "base_prefix": getattr(sys, "base_prefix", prefix),
            "is_venv": prefix != getattr(sys, "base_prefix", prefix),
            "is_conda": os.path.isdir(os.path.join(prefix, "conda-meta")),
        },
        "markers": _markers(),
        "site_dirs": site_dirs,
        "distributions": dists,
        "shadowed": shadowed,
        "env": env,
        "nvidia_libs": _nvidia_libs(site_dirs),
    }


if __name__ == "__main__":
    json.dump(probe(), sys.stdout)
