"""How a run ended: written to summary.json by the loop, read back by the launcher, shown in its summary."""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """The values are the spellings summary.json and the summary table use."""

    FINISHED = "finished"
    STOPPED = "stopped"
    """Stopped early on purpose (the loop's ``stop_after`` test hook); resumable."""
    PREEMPTED = "preempted"
    """Stopped by a signal (Ctrl-C, the scheduler's SIGTERM or SIGUSR1) after saving its current step; the same
    command resumes it."""
    FAILED = "failed"
    SKIPPED = "skipped"
    """Never started: --fail-fast after an earlier failure."""


SUMMARY_FILE = "summary.json"
"""Written by the child (loop.py) when its run ends, read by the launcher (launch.py) for the outcome."""
