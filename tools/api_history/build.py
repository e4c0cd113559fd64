"""Build the doctor's API history (doctor/api/api_history.json.gz) from the released wheels themselves.

For each package and each release pinned in releases.toml, the wheel (or, for releases PyPI has only as an
sdist, the sdist) is downloaded with pip into a cache folder and its sources are read with ``ast``, never
imported (bdv2.doctor.api.scan). The result says, for each ``module.name``, the ranges of releases that have
it, and for each caller package the ranges of its releases that use a ``jax.…`` name not every covered jax
release has.

    python tools/api_history/build.py [--cache DIR] [--only jax,flax] [--out doctor/api/api_history.json.gz]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bdv2.doctor.api import scan as api_scan
from bdv2.doctor.api.history import History, to_ranges

BUILDER_VERSION = "5"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# Package -> the archive folder its importable code lives in.
SOURCES = {"jax": "jax/", "flax": "flax/", "optax": "optax/", "chex": "chex/",
           "orbax-checkpoint": "orbax/checkpoint/", "distrax": "distrax/", "numpy": "numpy/", "scipy": "scipy/",
           "ml-dtypes": "ml_dtypes/", "protobuf": "google/protobuf/",
           "tensorflow-probability": "tensorflow_probability/substrates/jax/"}
JAX_CALLERS = ("flax", "optax", "chex", "orbax-checkpoint", "distrax")


def archive(pkg: str, version: str, cache: Path) -> Path:
    """The cached wheel or sdist of ``pkg==version``, downloaded with pip when absent."""
    folder = cache / pkg
    stem = pkg.replace("-", "_")
    for pattern in (f"{stem}-{version}-*.whl", f"{pkg}-{version}-*.whl", f"{stem}-{version}.tar.gz",
                    f"{pkg}-{version}.tar.gz"):
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"{pkg}=={version}", "-d", str(folder)]
    ok = subprocess.run([*pip, "--only-binary=:all:", "--python-version", "3.11"], check=False).returncode == 0
    if not ok:  # early jax releases are sdists only
        subprocess.run([*pip, "--no-binary=:all:", "--no-build-isolation"], check=True)
    return archive(pkg, version, cache)


def sources(path: Path, prefix: str) -> Iterator[tuple[str, str]]:
    """(path inside the package's top folder, text) of each .py/.pyi file under ``prefix``."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if n.startswith(prefix) and n.endswith((".py", ".pyi")):
                    yield n, z.read(n).decode("utf-8", "replace")
        return
    with tarfile.open(path) as t:
        for m in t.getmembers():
            n = m.name.split("/", 1)[1] if "/" in m.name else m.name
            f = t.extractfile(m) if m.isfile() and n.startswith(prefix) and n.endswith((".py", ".pyi")) else None
            if f:
                yield n, io.TextIOWrapper(f, encoding="utf-8", errors="replace").read()


def _resolve_stars(names: dict[str, set[str]], stars: dict[str, list[str]], exports: dict[str, set[str]],
                   computed: set[str]) -> set[str]:
    """``from t import *``: ``t``'s literal ``__all__``, else its public names (``computed``: modules without a
    literal ``__all__``, whose exports grow with their own star imports). Returns the opaque modules: those
    star-importing what the wheel has no source for (a compiled module without a .pyi) or another opaque
    module without a literal ``__all__``; their names are not all known."""
    opaque = {mod for mod, targets in stars.items() if any(t not in names for t in targets)}
    for _ in range(4):  # a star import of a star import: a few rounds reach every chain in practice
        for mod, targets in stars.items():
            for t in targets:
                got = exports.get(t, set())
                names[mod] |= got
                if mod in computed:
                    exports[mod] |= got
                if t in opaque and t in computed:
                    opaque.add(mod)
    return opaque


def scan(pkg: str, path: Path) -> tuple[list[str], list[str], list[str]]:
    """(sorted public ``module.name`` keys of one release, sorted jax names its code uses, sorted public modules
    whose names are not all known)."""
    names: dict[str, set[str]] = {}
    stars: dict[str, list[str]] = {}
    exports: dict[str, set[str]] = {}
    computed: set[str] = set()
    used: set[str] = set()
    for rel, text in sources(path, SOURCES[pkg]):
        mod = api_scan.module_name(rel)
        if not mod:
            continue
        try:
            m = api_scan.module_names(text, mod, rel.endswith(("__init__.py", "__init__.pyi")))
            names.setdefault(mod, set()).update(m.names)  # a .py and its .pyi: both
            stars.setdefault(mod, []).extend(m.stars)
            if m.exports is None:
                computed.add(mod)
            exports.setdefault(mod, set()).update(m.names if m.exports is None else m.exports)
            if pkg != "jax" and not api_scan.is_test_path(rel):
                used |= api_scan.uses(text, "jax")
        except SyntaxError:
            names.setdefault(mod, set())
    opaque = _resolve_stars(names, stars, exports, computed)
    keys: set[str] = set()
    for mod, found in names.items():
        if any(p.startswith("_") for p in mod.split(".")):
            continue
        keys.add(mod)  # the module itself: also a name of its parent package
        keys.update(f"{mod}.{n}" for n in found)
    return sorted(keys), sorted(used), sorted(m for m in opaque if not any(p.startswith("_") for p in m.split(".")))


def with_parents(keys: list[str]) -> set[str]:
    """The keys and every package above them (``google`` and ``google.protobuf`` for protobuf's modules), so
    that a dotted name is walked from its first part."""
    out = set(keys)
    for k in keys:
        parts = k.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return out


def _scan_cached(args: tuple[str, str, str]) -> tuple[list[str], list[str], list[str]]:
    pkg, version, cache = args
    out = Path(cache) / "scans" / BUILDER_VERSION / f"{pkg}-{version}.json"
    if out.exists():
        keys, used, opaque = json.loads(out.read_text())
        return keys, used, opaque
    keys, used, opaque = scan(pkg, archive(pkg, version, Path(cache)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([keys, used, opaque]))
    return keys, used, opaque


def labels(versions: list[str], label: str) -> list[str]:
    """The release names the index records: the versions, or with ``label = "minor"`` their minors."""
    return [".".join(v.split(".")[:2]) for v in versions] if label == "minor" else list(versions)


def build(releases: dict[str, list[str]], cache: Path, digest: str, workers: int = 2,
          minor: frozenset[str] = frozenset()) -> dict[str, object]:
    packages: dict[str, dict[str, object]] = {}
    used: dict[str, list[list[str]]] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for pkg, versions in releases.items():
            results = list(pool.map(_scan_cached, [(pkg, v, str(cache)) for v in versions]))
            present: dict[str, list[int]] = {}
            unknown: dict[str, list[int]] = {}
            for i, (keys, _, opaque) in enumerate(results):
                for k in with_parents(keys):
                    present.setdefault(k, []).append(i)
                for m in opaque:
                    unknown.setdefault(m, []).append(i)
            packages[pkg] = {"releases": labels(versions, "minor" if pkg in minor else ""),
                             "names": {k: to_ranges(v) for k, v in sorted(present.items())},
                             "opaque": {m: to_ranges(v) for m, v in sorted(unknown.items())}}
            used[pkg] = [u for _, u, _ in results]
    index: dict[str, object] = {"format": 1, "builder": BUILDER_VERSION, "releases_sha256": digest,
                                "packages": packages}
    history = History(index)
    for pkg in JAX_CALLERS:
        if pkg in used and "jax" in packages:
            packages[pkg]["uses"] = {"jax": _varying_uses(history, used[pkg])}
    return index


def _varying_uses(history: History, per_release: list[list[str]]) -> dict[str, list[list[int]]]:
    """jax key -> ranges of the caller's releases that use it, for keys some covered jax release lacks."""
    out: dict[str, list[int]] = {}
    for i, names in enumerate(per_release):
        for dotted in names:
            key = history.judged_key("jax", dotted)
            if key and not history.always_present("jax", key):
                out.setdefault(key, [])
                if not out[key] or out[key][-1] != i:
                    out[key].append(i)
    return {k: to_ranges(v) for k, v in sorted(out.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--releases", type=Path, default=HERE / "releases.toml")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "bdv2-api-history")
    ap.add_argument("--out", type=Path, default=ROOT / "doctor" / "api" / "api_history.json.gz")
    ap.add_argument("--only", default="", help="comma-separated packages (default: all in the list)")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    raw = a.releases.read_bytes()
    table = tomllib.loads(raw.decode())
    only = [p for p in a.only.split(",") if p]
    releases = {p: list(v["versions"]) for p, v in table.items() if not only or p in only}
    minor = frozenset(p for p, v in table.items() if v.get("label") == "minor")
    index = build(releases, a.cache, hashlib.sha256(raw).hexdigest(), a.workers, minor)
    data = json.dumps(index, separators=(",", ":"), sort_keys=True).encode()
    a.out.write_bytes(gzip.compress(data, 9, mtime=0))
    print(f"{a.out}: {a.out.stat().st_size} bytes; " + ", ".join(f"{p} x{len(v)}" for p, v in releases.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
