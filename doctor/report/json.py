"""The report for machines (``--json``): one object, schema 1 (report_schema.json)."""

from __future__ import annotations

import json
from typing import Any

from ..findings import Finding, exit_code
from ..probe.snapshot import Snapshot
from ..rooms import missing_rooms
from ._common import counts

JSON_SCHEMA = 1


def to_json(findings: list[Finding], snap: Snapshot | None, strict: bool = False,
            timings: dict[str, float] | None = None, extra: dict[str, Any] | None = None) -> str:
    from bdv2 import __version__

    doc: dict[str, Any] = {
        "schema": JSON_SCHEMA,
        "bdv2_version": __version__,
        "exit_code": exit_code(findings, strict),
        "summary": counts(findings),
        "target": None if snap is None else {
            "python": snap.python.get("version"), "executable": snap.python.get("executable"),
            "prefix": snap.python.get("prefix"), "distributions": len(snap.distributions),
        },
        "probes": [] if snap is None else [
            {"name": p.name, "status": p.status.value, "seconds": round(p.seconds, 3)} for p in snap.probes
        ],
        "findings": [f.to_dict() for f in findings],
        "timings": {k: round(v, 3) for k, v in (timings or {}).items()},
        # rooms whose stack is not installed, each with its absent distributions (rooms.py); null for a log
        "missing_stacks": None if snap is None else {m.room: list(m.missing) for m in missing_rooms(snap)},
    }
    if extra:
        doc.update(extra)
    return json.dumps(doc, indent=2)
