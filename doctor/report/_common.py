"""What every renderer shares: the counts line, the areas shown, the redaction of secret-looking variables."""

from __future__ import annotations

import re

from ..findings import Area, Finding, Severity
from ..probe.snapshot import Snapshot

MARK = {Severity.ERROR: "[red]✗[/]", Severity.WARNING: "[yellow]![/]", Severity.INFO: "[blue]i[/]"}
"""The mark of a finding's severity on a terminal."""
_SECRET = re.compile(r"TOKEN|KEY|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE", re.IGNORECASE)


def counts(findings: list[Finding]) -> dict[str, int]:
    return {s.value + "s": sum(f.severity is s for f in findings) for s in Severity}


def areas(findings: list[Finding], snap: Snapshot | None) -> list[Area]:
    shown = [Area.PACKAGES, Area.ENV] if snap is not None else []
    if snap is not None and (snap.nvidia_libs or snap.system.driver.known
                             or snap.dist("jax-cuda12-plugin") or snap.dist("jax-cuda13-plugin")):
        shown += [Area.CUDA, Area.DRIVER]
    if snap is not None and snap.probes:
        shown.append(Area.RUNTIME)
    for f in findings:
        if f.area not in shown:
            shown.append(f.area)
    return [a for a in Area if a in shown]


def redact_env(env: dict[str, str]) -> dict[str, str]:
    return {k: ("<redacted>" if _SECRET.search(k) else v) for k, v in env.items()}


