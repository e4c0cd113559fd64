"""What the API history alone says about the installed packages: which jax names each covered release of a
JAX-ecosystem package uses (scanned from its released wheel when the history was built) and which of those the
installed jax lacks. Reads no file of the environment and imports nothing: the static doctor's part of the scan
that ``--deep`` (deep.py) does over the installed sources. Stdlib only.
"""

from __future__ import annotations

import re

from ..probe.snapshot import Dist, Snapshot, normalise
from .history import History, load

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
    None when jax is missing or its installed release is not covered."""
    jax = snap.dist("jax")
    h = history or load()
    if jax is None or h is None or not h.covers("jax", jax.version):
        return None
    stale, scanned = [], []
    for d in snap.distributions:
        used = recorded_uses(d, h) if needs_jax(d) else None
        if used is not None:
            scanned.append(f"{d.name} {d.version} (its wheel, as scanned for the API history)")
            stale += [{"caller": d.name, "version": d.version, "name": k} for k in stale_keys(used, jax.version, h)]
    return {"jax": jax.version, "scanned": scanned, "stale": stale}
