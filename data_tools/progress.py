"""What a conversion reports, shared by every converter (convert.py's raw and numpy ones, rlds_convert.py's):
the `Report` it returns, the `Skipped` entries in it, and the `ProgressSink` it feeds while it runs; and the
`FetchProgress` that `bdv2 data fetch` feeds (bytes, not trajectories).

Stdlib only; the CLI renders both (render.py), tests and library callers may ignore the progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bdv2.paths import AnyPath


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity: a scheduler's allocation, not the whole machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Report:
    """What a conversion did. Bad trajectories are skipped, never fatal; `dropped` outputs were not written."""

    written: list[AnyPath] = field(default_factory=list)
    existing: list[Path] = field(default_factory=list)
    """Finished outputs found from an earlier run and left alone (no --overwrite)."""
    skipped: list[Skipped] = field(default_factory=list)
    dropped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trajectories: int = 0
    frames: int = 0
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class ProgressSink:
    """Receives progress from the conversions; the CLI renders it, tests ignore it."""

    def start(self, total_trajectories: int) -> None:
        pass

    def advance(self, trajectories: int, frames: int) -> None:
        pass


class FetchProgress:
    """Receives a download's progress in bytes; the CLI renders it (rate, ETA), library callers may ignore it."""

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def file(self, rel: str) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass
