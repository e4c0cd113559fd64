"""Snapshots built from literals, so rules are tested without a live environment."""

from __future__ import annotations

from typing import Any

from bdv2.doctor.probe.snapshot import Dist, ProbeResult, Snapshot

MARKERS = {
    "implementation_name": "cpython", "implementation_version": "3.11.7", "os_name": "posix",
    "platform_machine": "x86_64", "platform_release": "6.1.0", "platform_system": "Linux",
    "platform_version": "#1 SMP", "python_full_version": "3.11.7", "platform_python_implementation": "CPython",
    "python_version": "3.11", "sys_platform": "linux",
}


def make_snap(versions: dict[str, str] | None = None, requires: dict[str, list[str]] | None = None,
              python: str = "3.11.7", env: dict[str, str] | None = None,
              probes: tuple[ProbeResult, ...] = (), **kw: Any) -> Snapshot:
    """A Snapshot of an environment holding exactly ``versions`` (name -> version)."""
    requires = requires or {}
    dists = tuple(
        Dist(name=n, version=v, requires=tuple(requires.get(n, ())), location="/venv/lib/python3.11/site-packages")
        for n, v in (versions or {}).items()
    )
    return Snapshot(
        python={"version": python, "executable": "/venv/bin/python", "prefix": "/venv"},
        markers={**MARKERS, "python_version": ".".join(python.split(".")[:2]), "python_full_version": python},
        distributions=dists, env=env or {}, probes=probes, **kw,
    )
