"""What the doctor reports: Findings with evidence and a fix, and the exit code derived from them."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


class Area(str, enum.Enum):
    """Where a finding belongs in the report; the order here is the report's order."""

    PACKAGES = "packages"
    CUDA = "cuda"
    DRIVER = "driver"
    ENV = "env"
    RUNTIME = "runtime"
    LOG = "log"


AREA_TITLES = {
    Area.PACKAGES: "Python packages",
    Area.CUDA: "CUDA libraries",
    Area.DRIVER: "NVIDIA driver",
    Area.ENV: "Environment variables",
    Area.RUNTIME: "Runtime probes",
    Area.LOG: "Log diagnosis",
}


class EnvOpKind(str, enum.Enum):
    SET = "set"
    UNSET = "unset"
    PREPEND = "prepend"
    """Put ``value`` first in a ':'-separated list variable (LD_LIBRARY_PATH, PATH), once."""
    REMOVE = "remove"
    """Drop ``value`` from a ':'-separated list variable."""


@dataclass(frozen=True)
class EnvOp:
    """One environment change that `bdv2 doctor --fix` can apply (and undo)."""

    op: EnvOpKind
    name: str
    value: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"op": self.op.value, "name": self.name, "value": self.value}


@dataclass(frozen=True)
class Fix:
    """A concrete way out: a sentence, the shell commands, the environment changes."""

    summary: str
    commands: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    """Variables to set (shown to people; each also appears in env_ops)."""
    env_ops: tuple[EnvOp, ...] = ()
    """Every environment change, in order; what --fix applies."""

    def __post_init__(self) -> None:
        # `env` is the short form: every plain assignment is also an explicit op.
        missing = [EnvOp(EnvOpKind.SET, k, v) for k, v in self.env.items()
                   if not any(o.op is EnvOpKind.SET and o.name == k for o in self.env_ops)]
        if missing:
            object.__setattr__(self, "env_ops", (*missing, *self.env_ops))

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "commands": list(self.commands), "env": dict(self.env),
                "env_ops": [o.to_dict() for o in self.env_ops]}


@dataclass(frozen=True)
class Finding:
    """One problem (or note) found, with its evidence, fix and source."""

    id: str
    """Stable identifier (the matrix entry's id for rules and signatures)."""
    severity: Severity
    area: Area
    title: str
    evidence: tuple[str, ...] = ()
    """What was seen: versions, paths, verbatim error lines."""
    fix: Fix | None = None
    source: str = ""
    """URL or reference backing the rule."""
    packages: tuple[str, ...] = ()
    """Normalised names of the distributions involved (used to merge duplicate reports)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        d["area"] = self.area.value
        d["evidence"] = list(self.evidence)
        d["packages"] = list(self.packages)
        d["fix"] = self.fix.to_dict() if self.fix else None
        return d


def sort_findings(findings: list[Finding]) -> list[Finding]:
    areas = list(Area)
    return sorted(findings, key=lambda f: (areas.index(f.area), f.severity.rank, f.id))


class Exit(enum.IntEnum):
    """`bdv2 doctor`'s exit codes (README: "bdv2 doctor"; tests/doctor/test_cli.py test_exit_code_3_*)."""

    HEALTHY = 0
    PROBLEMS = 1
    """An error remains (or a warning, under --strict)."""
    USAGE = 2
    """click's usage errors."""
    CANNOT_EXAMINE = 3
    """No such interpreter, the metadata probe failed or timed out, an unreadable snapshot."""


def exit_code(findings: list[Finding], strict: bool = False) -> int:
    """0 healthy; 1 when an error remains (or a warning, under --strict)."""
    bad = {Severity.ERROR, Severity.WARNING} if strict else {Severity.ERROR}
    return Exit.PROBLEMS if any(f.severity in bad for f in findings) else Exit.HEALTHY
