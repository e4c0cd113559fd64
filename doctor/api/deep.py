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
import re
import time
from pathlib import Path

from ..probe.snapshot import Dist, ProbeResult, ProbeStatus, Snapshot, normalise
from . import scan as api_scan
from .history import History, load

NAME = "jax-api-uses"
_SCANNER = "1"
_REQ = re.compile(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*")
_SELF = {"jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "jax-cuda12-pjrt", "jax-cuda13-pjrt"}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bdv2" / "api-uses"


def _needs_jax(d: Dist) -> bool:
    """A hard requirement on jax or jaxlib (an optional extra, like TFP's or etils', is not one)."""
    if d.key in _SELF:
        return False
    for r in d.requires:
        m = _REQ.match(r)
        if m and normalise(m[0]) in ("jax", "jaxlib") and "extra" not in r.partition(";")[2]:
            return True
    return False


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


def recorded_uses(d: Dist, history: History) -> list[str] | None:
    """The jax names the released wheel of ``d`` uses, from the history (the same ast scan, done when the
    history was built): None when that release is not covered."""
    caller = normalise(d.name)
    releases = history.releases(caller)
    if d.version not in releases or history.uses(caller, "") is None:
        return None
    i = releases.index(d.version)
    table = history.packages[caller]["uses"]["jax"]
    return sorted(k for k, ranges in table.items() if any(a <= i <= b for a, b in ranges))


def stale_uses(d: Dist, jax_version: str, history: History, cache: Path | None = None,
               read_sources: bool = False) -> list[str]:
    """The names ``d`` uses that jax ``jax_version`` lacks (a covered version): for each chain, its first
    element that version does not have (``jax.linear_util``, not ``jax.linear_util.wrap_init``). A release the
    history covers is answered from it unless ``read_sources``; any other is read from its installed files."""
    used = None if read_sources else recorded_uses(d, history)
    out: list[str] = []
    for dotted in (dist_uses(d, cache) or []) if used is None else used:
        key = history.judged_key("jax", dotted)
        parts = key.split(".") if key else []
        for i in range(2, len(parts) + 1):
            v = history.verdict("jax", ".".join(parts[:i]))
            if v and v.known and v.present_in(jax_version) is False:
                if v.key not in out:
                    out.append(v.key)
                break
    return out


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
