"""The repair's data: the Plan (what --fix would do), the Target it acts on, the Steps it took, the Recheck.

Pure types shared by the planner (plan.py), the applier (apply.py), the flow (flow.py) and the renderer
(report.py), so rendering a plan never imports the code that changes files.
"""

from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DoctorError
from ..findings import EnvOp, Finding
from ..probe.snapshot import Interpreter, InterpreterKind, Snapshot


class RepairError(DoctorError):
    """A repair or an undo could not be carried out; the message says what is left as it was."""


class StepStatus(str, enum.Enum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


TargetKind = InterpreterKind


@dataclass(frozen=True)
class Plan:
    """What --fix would do. Empty when nothing applies."""

    python: str
    """The target interpreter: pip steps run as ``<python> -m pip ...``."""
    env_ops: tuple[EnvOp, ...] = ()
    pip: tuple[str, ...] = ()
    """Commands as shown to people ('python -m pip install "jax==0.10.2"')."""
    row: str = ""
    changes: tuple[str, ...] = ()
    """Human lines of the version moves ('jaxlib 0.9.2 -> ==0.10.2')."""
    constraints: str = ""
    """The row's pip constraints file (`bdv2 matrix constraints ROW`), given to every install as `-c`."""
    because: tuple[str, ...] = ()
    """Ids of the findings the environment edits come from."""
    notes: tuple[str, ...] = ()
    own_fixes: tuple[str, ...] = ()
    """Ids of the findings whose own fixes make the version move (when no known-good row fits); such a
    move is checked by the resolver, with every other installed package held at its version."""

    @property
    def empty(self) -> bool:
        return not self.env_ops and not self.pip

    def pip_argv(self) -> list[list[str]]:
        """Each pip step as argv for the target interpreter (the leading 'python' replaced by it)."""
        out = []
        for cmd in self.pip:
            argv = shlex.split(cmd, comments=True)
            if argv and argv[0] in ("python", "python3"):
                argv[0] = self.python
            out.append(argv)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"python": self.python, "env_ops": [o.to_dict() for o in self.env_ops], "pip": list(self.pip),
                "row": self.row, "changes": list(self.changes), "constraints": self.constraints,
                "because": list(self.because), "notes": list(self.notes), "own_fixes": list(self.own_fixes),
                "empty": self.empty}


@dataclass(frozen=True)
class Target:
    """The environment being repaired; apply.owned_files names the files the doctor owns in it."""

    kind: TargetKind
    prefix: Path
    python: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TargetKind(self.kind))

    @classmethod
    def of(cls, snap: Snapshot) -> Target:
        return cls.of_interpreter(snap.interpreter)

    @classmethod
    def of_interpreter(cls, interpreter: Interpreter) -> Target:
        return cls(interpreter.kind, interpreter.prefix, interpreter.executable)

    @property
    def journal(self) -> Path:
        return self.prefix / ".bdv2" / "journal.json"


@dataclass(frozen=True)
class Step:
    what: str
    status: StepStatus
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", StepStatus(self.status))


@dataclass(frozen=True)
class Recheck:
    findings: list[Finding]
    fixed: tuple[str, ...]
    """Ids of error/warning findings that are gone."""
    probes_ok: tuple[str, ...]
    """Probes that failed before and pass now."""
    probes_failing: tuple[str, ...]
