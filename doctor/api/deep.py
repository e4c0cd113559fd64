"""``--deep``: read the installed JAX-ecosystem packages' sources (files read and parsed with ``ast``, never
imported) for the ``jax.…`` names they use, and name those the installed jax does not have according to the
API history (history.py). One result per scan, as a ProbeResult named ``jax-api-uses``; the ``jax_api_uses``
check (checks/api_rules.py) turns its output into findings (rule ``jax-api-stale-use`` in compat_matrix.toml).

What a distribution uses depends only on its files, so it is cached by name and version under
``~/.cache/bdv2/api-uses/`` (``$XDG_CACHE_HOME`` when set). Stdlib only.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from ..probe.snapshot import Dist, ProbeResult, ProbeStatus, Snapshot, normalise
from . import USES_PROBE
from . import scan as api_scan
from .history import History, load
from .recorded import needs_jax as _needs_jax
from .recorded import recorded_uses, stale_keys

NAME = USES_PROBE
_SCANNER = "1"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bdv2" / "api-uses"


def _record(d: Dist) -> Path | None:
    """The distribution's RECORD file (the list of files it installed)."""
    loc = Path(d.location)
    for stem in {d.name.replace("-", "_"), normalise(d.name).replace("-", "_"), d.name}:
        p = loc / f"{stem}-{d.version}.dist-info" / "RECORD"
        if p.is_file():
            return p
    return None


def dist_uses(d: Dist, cache: Path | None = None) -> list[str] | None:
    """Sorted ``jax.…`` names the distribution's .py files use (None: its files cannot be listed)."""
    cache = cache or cache_dir()
    hit = cache / f"{normalise(d.name)}-{d.version}-{_SCANNER}.json"
    try:
        return list(json.loads(hit.read_text()))
    except (OSError, ValueError):
        pass
    record = _record(d)
    if record is None:
        return None
    found: set[str] = set()
    with record.open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if not row or not row[0].endswith(".py") or row[0].startswith("..") or api_scan.is_test_path(row[0]):
                continue
            try:
                text = (Path(d.location) / row[0]).read_text(encoding="utf-8", errors="replace")
                if "jax" in text:
                    found |= api_scan.uses(text, "jax")
            except (OSError, SyntaxError, ValueError):
                continue
    out = sorted(found)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = hit.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out))
        tmp.replace(hit)
    except OSError:
        pass  # an unwritable cache only costs the next run the scan again
    return out


def stale_uses(d: Dist, jax_version: str, history: History, cache: Path | None = None,
               read_sources: bool = False) -> list[str]:
    """The names ``d`` uses that jax ``jax_version`` lacks (a covered version): for each chain, its first
    element that version does not have (``jax.linear_util``, not ``jax.linear_util.wrap_init``). A release the
    history covers is answered from it unless ``read_sources``; any other is read from its installed files."""
    used = None if read_sources else recorded_uses(d, history)
    return stale_keys((dist_uses(d, cache) or []) if used is None else used, jax_version, history)


def scan(snap: Snapshot, history: History | None = None, cache: Path | None = None,
         read_sources: bool = False) -> ProbeResult:
    """The ``jax-api-uses`` result for ``snap``'s installed packages."""
    t0 = time.perf_counter()
    jax = snap.dist("jax")
    h = history or load()
    if jax is None:
        return ProbeResult(NAME, ProbeStatus.SKIPPED, error="not installed: jax")
    if h is None:
        return ProbeResult(NAME, ProbeStatus.SKIPPED, error="the API history (api_history.json.gz) is not installed")
    if not h.covers("jax", jax.version):
        return ProbeResult(NAME, ProbeStatus.SKIPPED, error=f"the API history does not cover jax {jax.version}")
    stale = []
    scanned = []
    for d in snap.distributions:
        if d.location and _needs_jax(d):
            known = not read_sources and recorded_uses(d, h) is not None
            scanned.append(f"{d.name} {d.version}" + (" (its wheel, as scanned for the API history)" if known else ""))
            stale += [{"caller": d.name, "version": d.version, "name": k}
                      for k in stale_uses(d, jax.version, h, cache, read_sources)]
    return ProbeResult(NAME, ProbeStatus.OK, time.perf_counter() - t0,
                       output={"jax": jax.version, "scanned": scanned, "stale": stale})
