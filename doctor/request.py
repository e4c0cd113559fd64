"""What one `bdv2 doctor` call asks for, decided once by the CLI from its flags: a frozen DoctorRequest.

The library reads the request (the report's renderer picks its format from it); nothing below the CLI sees
the flags themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .checks.registry import Options


class Mode(enum.Enum):
    """What one `bdv2 doctor` call does."""

    CHECK = "check"
    """Examine a live environment and report."""
    SNAPSHOT = "snapshot"
    """Diagnose a saved snapshot."""
    LOG = "log"
    """Diagnose a log alone."""
    FIX = "fix"
    """Report, show the repair plan, apply it, examine again."""
    FIX_DRY_RUN = "fix-dry-run"
    """Report and show the plan (--json: the plan inside the report); change nothing."""
    PRINT_ENV = "print-env"
    """Print only the plan's environment edits as sh lines for eval."""
    UNDO = "undo"
    """Reverse every earlier --fix."""


class OutputFormat(enum.Enum):
    """How the report is written: one renderer each (report/text.py, report/json.py, report/markdown.py)."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


@dataclass(frozen=True)
class PipConsent:
    """Whether --fix may run its version moves: --yes, and --allow-conda-overwrite in a conda env."""

    yes: bool = False
    allow_conda: bool = False


@dataclass(frozen=True)
class DoctorRequest:
    """Everything one `bdv2 doctor` invocation asks for (the options, decided once)."""

    mode: Mode = Mode.CHECK
    output: OutputFormat = OutputFormat.TEXT
    python: str | None = None
    """The interpreter (or venv folder, or command on PATH) to examine; None: this one."""
    snapshot_file: Path | None = None
    save_snapshot: Path | None = None
    log_file: IO[str] | None = None
    deep: bool = False
    timeout: float = 120.0
    """Seconds allowed to each runtime probe."""
    options: Options = field(default_factory=Options)
    """What the user asked of this run (the training batch), kept apart from the snapshot's facts."""
    strict: bool = False
    verbose: bool = False
    matrix_file: Path | None = None
    consent: PipConsent = field(default_factory=PipConsent)
    need: tuple[str, ...] = ()
    """Rooms (rooms.ROOMS) whose stack must be installed for exit code 0 (--need)."""
