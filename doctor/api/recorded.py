"""What the API history alone says about the installed packages: which jax names each covered release of a
JAX-ecosystem package uses (scanned from its released wheel when the history was built) and which of those the
installed jax lacks. Reads no file of the environment and imports nothing: the static doctor's part of the scan
that ``--deep`` (deep.py) does over the installed sources. Stdlib only; its answers are cached (diskcache.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import diskcache
from ..probe.snapshot import Dist, Snapshot, normalise
from . import history
from .history import INDEX, History, load

_REQ = re.compile(r"\s*[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
_SELF = {"jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "jax-cuda12-pjrt", "jax-cuda13-pjrt"}


def needs_jax(d: Dist) -> bool:
    """A hard requirement on jax or jaxlib (an optional extra, like TFP's or etils', is not one)."""
    if d.key in _SELF:
        return False
    for r in d.requires:
        m = _REQ.match(r)
        if m and normalise(m[0]) in ("jax", "jaxlib") and "extra" not in r.partition(";")[2]:
            return True
    return False


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


def stale_keys(used: list[str], jax_version: str, history: History) -> list[str]:
    """Of the dotted jax names ``used``, those jax ``jax_version`` (a covered version) lacks: for each chain, its
    first element that version does not have (``jax.linear_util``, not ``jax.linear_util.wrap_init``)."""
    out: list[str] = []
    for dotted in used:
        key = history.judged_key("jax", dotted)
        parts = key.split(".") if key else []
        for i in range(2, len(parts) + 1):
            v = history.verdict("jax", ".".join(parts[:i]))
            if v and v.known and v.present_in(jax_version) is False:
                if v.key not in out:
                    out.append(v.key)
                break
    return out


def recorded_scan(snap: Snapshot, history: History | None = None) -> dict[str, object] | None:
    """The scan's output for the installed packages whose release the history covers, from the history alone;
    None when jax is missing or its installed release is not covered.

    Without ``history`` (the shipped one), the answer for each (jax release, package release) is kept in the
    doctor's cache keyed on the history file's bytes: a plain check reads the 3 MB history only for releases
    it has not judged before."""
    jax = snap.dist("jax")
    if jax is None:
        return None
    callers = [d for d in snap.distributions if needs_jax(d)]
    answers = _answers(jax.version, callers, history) if history is not None else _cached_answers(jax.version, callers)
    if answers is None:
        return None
    stale, scanned = [], []
    for d in callers:
        keys = answers[_query(jax.version, d)]
        if keys is not None:
            scanned.append(f"{d.name} {d.version} (its wheel, as scanned for the API history)")
            stale += [{"caller": d.name, "version": d.version, "name": k} for k in keys]
    return {"jax": jax.version, "scanned": scanned, "stale": stale}


def _query(jax_version: str, d: Dist) -> str:
    return f"{jax_version} {normalise(d.name)} {d.version}"


def _answers(jax_version: str, callers: list[Dist], h: History | None) -> dict[str, list[str] | None] | None:
    """Query -> the jax names the caller release uses that ``jax_version`` lacks (None: release not covered);
    None when the history is absent or does not cover ``jax_version``."""
    if h is None or not h.covers("jax", jax_version):
        return None
    out: dict[str, list[str] | None] = {}
    for d in callers:
        used = recorded_uses(d, h)
        out[_query(jax_version, d)] = None if used is None else stale_keys(used, jax_version, h)
    return out


def _cached_answers(jax_version: str, callers: list[Dist]) -> dict[str, list[str] | None] | None:
    try:  # keyed on the history and on the code that reads it
        k = diskcache.key(INDEX.read_bytes(), Path(__file__).read_bytes(), Path(history.__file__).read_bytes())
    except OSError:
        return None  # load() would find no history either
    table = diskcache.get("api-recorded", k)
    table = table if isinstance(table, dict) else {}
    covered = table.get(jax_version)  # jax release -> whether the history covers it
    if covered is False:
        return None
    if covered is True and all(_query(jax_version, d) in table for d in callers):
        return table
    found = _answers(jax_version, callers, load())
    if found is None:
        if load() is not None:
            diskcache.put("api-recorded", k, {**table, jax_version: False})
        return None
    table = {**table, **found, jax_version: True}
    diskcache.put("api-recorded", k, table)
    return table
