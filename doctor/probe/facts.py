"""Typed system facts (the Snapshot's ``system`` part): CUDA library copies, the driver, CUDA tools, XLA flags.

Each record reads and writes the same JSON as the plain dicts older snapshots hold (missing keys take their
defaults; empty optional parts are left out when written), so a snapshot saved by any bdv2 version loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Lib:
    """One CUDA library file: 'libcudnn.so.8' of stem 'libcudnn', version '8.9.7' (from its name or symlink)."""

    stem: str
    name: str
    version: str = ""
    path: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lib:
        return cls(stem=d["stem"], name=d["name"], version=d.get("version", ""), path=d.get("path", ""))

    def to_dict(self) -> dict[str, str]:
        return {"stem": self.stem, "name": self.name, "version": self.version, "path": self.path}


@dataclass(frozen=True)
class LibFolder:
    """A library folder (one LD_LIBRARY_PATH entry, conda's lib) and the CUDA libraries in it."""

    dir: str
    libs: tuple[Lib, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LibFolder:
        return cls(dir=d["dir"], libs=tuple(Lib.from_dict(x) for x in d.get("libs", ())))

    def to_dict(self) -> dict[str, Any]:
        return {"dir": self.dir, "libs": [x.to_dict() for x in self.libs]}


@dataclass(frozen=True)
class Gpu:
    """One GPU as the driver reports it."""

    name: str
    compute_cap: str = ""
    """'9.0'; '' where the driver is too old to report it."""


@dataclass(frozen=True)
class Driver:
    """The NVIDIA driver as NVML, nvidia-smi or /proc report it; every field '' (or empty) when unknown."""

    version: str = ""
    cuda: str = ""
    """The highest CUDA release the driver supports ('12.8')."""
    kernel_module: str = ""
    gpus: tuple[Gpu, ...] = ()
    source: str = ""
    """'nvml', 'nvidia-smi' or '/proc/driver/nvidia/version'."""
    error: str = ""
    """NVML's or nvidia-smi's error, verbatim."""

    @property
    def known(self) -> bool:
        return any((self.version, self.cuda, self.kernel_module, self.gpus, self.source, self.error))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Driver:
        gpus = tuple(Gpu(g["name"], g.get("compute_cap", "")) for g in d.get("gpus", ()))
        return cls(version=d.get("version", ""), cuda=d.get("cuda", ""), kernel_module=d.get("kernel_module", ""),
                   gpus=gpus, source=d.get("source", ""), error=d.get("error", ""))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in (("version", self.version), ("cuda", self.cuda),
                                                 ("kernel_module", self.kernel_module), ("source", self.source),
                                                 ("error", self.error)) if v}
        if self.gpus or self.source in ("nvml", "nvidia-smi"):
            out["gpus"] = [{"name": g.name, "compute_cap": g.compute_cap} for g in self.gpus]
        return out


@dataclass(frozen=True)
class Tool:
    """A CUDA tool found on PATH (ptxas, nvlink, nvcc) and the release its --version reports."""

    path: str
    release: str = ""
    """'12.4'"""
    version: str = ""
    """'12.4.131'"""


@dataclass(frozen=True)
class XlaFlagScan:
    """The XLA_FLAGS names checked against the flag names compiled into the installed jaxlib."""

    given: tuple[str, ...] = ()
    scanned: str = ""
    """The jaxlib library that was scanned ('' when none was found)."""
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemFacts:
    """Machine facts outside Python's metadata, collected by probe/system.py."""

    ld_library_path: tuple[LibFolder, ...] = ()
    ldconfig: tuple[Lib, ...] = ()
    driver: Driver = field(default_factory=Driver)
    tools: dict[str, Tool] = field(default_factory=dict)
    conda_lib: LibFolder | None = None
    local_cuda_ptxas: str = ""
    xla_flags: XlaFlagScan | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SystemFacts:
        xla = d.get("xla_flags")
        conda = d.get("conda_lib")
        return cls(
            ld_library_path=tuple(LibFolder.from_dict(x) for x in d.get("ld_library_path", ())),
            ldconfig=tuple(Lib.from_dict(x) for x in d.get("ldconfig", ())),
            driver=Driver.from_dict(d.get("driver") or {}),
            tools={k: Tool(v["path"], v.get("release", ""), v.get("version", ""))
                   for k, v in d.get("tools", {}).items()},
            conda_lib=LibFolder.from_dict(conda) if conda else None,
            local_cuda_ptxas=d.get("local_cuda_ptxas", ""),
            xla_flags=XlaFlagScan(tuple(xla.get("given", ())), xla.get("scanned", ""), tuple(xla.get("unknown", ())))
            if xla else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ld_library_path": [x.to_dict() for x in self.ld_library_path],
            "ldconfig": [x.to_dict() for x in self.ldconfig],
            "driver": self.driver.to_dict(),
            "tools": {k: {"path": t.path, "release": t.release, "version": t.version} for k, t in self.tools.items()},
        }
        if self.conda_lib is not None:
            out["conda_lib"] = self.conda_lib.to_dict()
        if self.local_cuda_ptxas:
            out["local_cuda_ptxas"] = self.local_cuda_ptxas
        if self.xla_flags is not None:
            out["xla_flags"] = {"given": list(self.xla_flags.given), "scanned": self.xla_flags.scanned,
                                "unknown": list(self.xla_flags.unknown)}
        return out
