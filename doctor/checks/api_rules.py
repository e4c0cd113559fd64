"""The built-in check over ``--deep``'s scan of installed sources (api/deep.py), or without --deep over the API
history of the installed releases: each installed package that uses a ``jax.…`` name the installed jax does not
have, with the API history's advice."""

from __future__ import annotations

from ..api import USES_PROBE
from ..api.recorded import recorded_scan
from ..findings import Finding, Fix
from ..matrix.load import Matrix, Rule
from ..probe.snapshot import ProbeStatus, Snapshot, normalise
from .registry import Options, check


@check("jax_api_uses")
def check_jax_api_uses(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """Each installed package that uses a jax name the installed jax lacks: from --deep's source scan when it
    ran, else from the API history of the installed releases (static: nothing read or imported)."""
    p = snap.probe(USES_PROBE)
    if p is not None and p.status is ProbeStatus.OK:
        output = p.output
    elif p is None:
        output = recorded_scan(snap) or {}
    else:
        return []
    jax_version = str(output.get("jax", ""))
    out = []
    if output.get("stale"):
        from ..api.advice import advise  # reads the whole API history: only where a stale use was found
    for s in output.get("stale", []):
        a = advise("jax", s["name"], s["caller"], jax_version, s["version"])
        title = (f"{s['caller']} {s['version']} uses {s['name']}, which jax {jax_version} does not have")
        how = next((x for x in output.get("scanned", []) if x.startswith(f"{s['caller']} {s['version']} (")), "")
        evidence = (f"read in {s['caller']}'s " + ("released wheel by the API history's build" if how else
                                                    "installed sources") + " (never imported)",
                    *((f"API history: {a.sentence}",) if a else ()))
        out.append(Finding(rule.id, rule.severity, rule.area, title, evidence,
                           a.fix if a else Fix(rule.fix, rule.commands), source=rule.source,
                           packages=(normalise(s["caller"]), "jax")))
    return out
