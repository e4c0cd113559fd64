"""The Snapshot: every fact the rules look at, frozen and JSON round-trippable.

A Snapshot is built by ``collect`` from a live interpreter, or loaded from a file that a user
saved with ``bdv2 doctor --save-snapshot`` on another machine. Rules only ever see a Snapshot.
"""

from __future__ import annotations

import enum
import functools
import json
import re
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from ..errors import CollectError
from .facts import SystemFacts

SNAPSHOT_SCHEMA = 1


_SEPARATORS = re.compile(r"[-_.]+")


@functools.lru_cache(maxsize=4096)
def normalise(name: str) -> str:
    """PEP 503 name normalisation: 'Tensorflow_CPU' -> 'tensorflow-cpu' (the rules ask it thousands of times a
    run, of a few hundred names)."""
    return _SEPARATORS.sub("-", name).lower()


@dataclass(frozen=True)
class Dist:
    """One installed distribution, from its metadata."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    location: str = ""
    installer: str = ""

    @functools.cached_property
    def key(self) -> str:
        return normalise(self.name)

    @functools.cached_property
    def parsed(self) -> Version | None:
        try:
            return Version(self.version)
        except InvalidVersion:
            return None


class ProbeStatus(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"

    @property
    def bad(self) -> bool:
        """The probe raised, crashed or hung."""
        return self in (ProbeStatus.FAILED, ProbeStatus.TIMEOUT)


@dataclass(frozen=True)
class ProbeResult:
    """One runtime probe (--deep): a subprocess that imported something and reported back."""

    name: str
    status: ProbeStatus
    seconds: float = 0.0
    output: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    """Verbatim stderr tail (or the reason it was skipped)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ProbeStatus(self.status))


@dataclass(frozen=True)
class LibDir:
    """A lib folder of the pip CUDA wheels (site-packages/nvidia/*/lib) and its files."""

    dir: str
    files: tuple[str, ...] = ()


class InterpreterKind(str, enum.Enum):
    VENV = "venv"
    CONDA = "conda"
    SYSTEM = "system"
    """Neither: nothing is written, only --print-env (or `bdv2 run`) helps."""


@dataclass(frozen=True)
class Interpreter:
    """The examined interpreter, resolved once (``--python`` is resolved by collect, then read from here by the
    deep probes, the repair plan, --fix's re-collection and --undo)."""

    executable: str
    prefix: Path
    kind: InterpreterKind

    @classmethod
    def from_facts(cls, py: dict[str, Any]) -> Interpreter:
        """From a snapshot's ``python`` facts (a snapshot without an executable stands for this interpreter)."""
        kind = (InterpreterKind.VENV if py.get("is_venv") else InterpreterKind.CONDA if py.get("is_conda")
                else InterpreterKind.SYSTEM)
        return cls(str(py.get("executable") or sys.executable), Path(str(py.get("prefix", ""))), kind)


@dataclass(frozen=True)
class Snapshot:
    """Everything the rules read about one environment: metadata, environment, system facts, probes."""

    python: dict[str, Any]
    markers: dict[str, str]
    distributions: tuple[Dist, ...]
    env: dict[str, str] = field(default_factory=dict)
    site_dirs: tuple[str, ...] = ()
    shadowed: tuple[Dist, ...] = ()
    nvidia_libs: tuple[LibDir, ...] = ()
    probes: tuple[ProbeResult, ...] = ()
    system: SystemFacts = field(default_factory=SystemFacts)
    """Machine facts (probe/system.py): CUDA library copies, driver, CUDA tools, XLA flag check."""
    collected_at: str = ""
    schema: int = SNAPSHOT_SCHEMA

    # -- queries the rules use -------------------------------------------------------------
    def dist(self, name: str) -> Dist | None:
        return self._by_key.get(normalise(name))

    def jax_cuda_backend(self) -> Dist | None:
        """The distribution that gives the examined jax its CUDA backend: a jax-cuda13/12 plugin, or a '+cuda'
        jaxlib build; None for a CPU-only jax (or none). The one answer the doctor's GPU rules and the trainer's
        device check read."""
        for name in ("jax-cuda13-plugin", "jax-cuda12-plugin"):
            d = self.dist(name)
            if d is not None and d.parsed is not None:
                return d
        lib = self.dist("jaxlib")
        if lib is not None and lib.parsed is not None and "cuda" in lib.version:
            return lib
        return None

    @property
    def jax_has_cuda(self) -> bool | None:
        """Whether the examined jax has a CUDA backend (``jax_cuda_backend``); None where no jaxlib is installed."""
        return None if self.dist("jaxlib") is None else self.jax_cuda_backend() is not None

    @functools.cached_property
    def _by_key(self) -> dict[str, Dist]:
        """The first distribution of each name (the one Python imports), built once per snapshot."""
        out: dict[str, Dist] = {}
        for d in self.distributions:
            out.setdefault(d.key, d)
        return out

    def version(self, name: str) -> Version | None:
        d = self.dist(name)
        return d.parsed if d else None

    @property
    def interpreter(self) -> Interpreter:
        return Interpreter.from_facts(self.python)

    @property
    def python_version(self) -> Version:
        return Version(str(self.python.get("version", "0")))

    def probe(self, name: str) -> ProbeResult | None:
        return next((p for p in self.probes if p.name == name), None)

    def with_probes(self, probes: tuple[ProbeResult, ...]) -> Snapshot:
        return replace(self, probes=probes)

    # -- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["system"] = self.system.to_dict()
        d["probes"] = [{**p, "status": p["status"].value} for p in d["probes"]]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        try:
            return cls(
                python=dict(data["python"]),
                markers=dict(data.get("markers", {})),
                distributions=tuple(_dist(d) for d in data["distributions"]),
                env=dict(data.get("env", {})),
                site_dirs=tuple(data.get("site_dirs", ())),
                shadowed=tuple(_dist(d) for d in data.get("shadowed", ())),
                nvidia_libs=tuple(
                    LibDir(dir=x["dir"], files=tuple(x.get("files", ()))) for x in data.get("nvidia_libs", ())
                ),
                probes=tuple(
                    ProbeResult(
                        name=p["name"], status=p["status"], seconds=float(p.get("seconds", 0.0)),
                        output=dict(p.get("output", {})), error=p.get("error", ""),
                    )
                    for p in data.get("probes", ())
                ),
                system=SystemFacts.from_dict(data.get("system") or {}),
                collected_at=data.get("collected_at", ""),
                schema=int(data.get("schema", SNAPSHOT_SCHEMA)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CollectError(f"not a bdv2 snapshot: missing or malformed field {e}") from e

    def save(self, path: Path) -> None:
        """Write atomically, so an interrupted save never leaves half a file."""
        from bdv2.fsutil import write_json_atomic

        write_json_atomic(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as e:
            raise CollectError(f"cannot read snapshot {path}: {e.strerror}") from e
        except json.JSONDecodeError as e:
            raise CollectError(f"snapshot {path} is not JSON (line {e.lineno}: {e.msg})") from e
        if not isinstance(data, dict):
            raise CollectError(f"snapshot {path} is not a JSON object")
        try:
            return cls.from_dict(data)
        except CollectError as e:
            raise CollectError(f"snapshot {path}: {e}") from e


def _dist(d: dict[str, Any]) -> Dist:
    return Dist(
        name=d["name"], version=d["version"], requires=tuple(d.get("requires", ())),
        location=d.get("location", ""), installer=d.get("installer", ""),
    )
