"""Version thresholds the GPU checks compare against, read from the [knowledge] tables of compat_matrix.toml.

They are facts about other projects (NVIDIA's driver table, JAX's cuDNN and library-lookup history), so they
live in the data file with a public source each, not as literals in code.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from .errors import MatrixError


def default_matrix_path() -> Path:
    return Path(str(resources.files("bdv2.doctor").joinpath("compat_matrix.toml")))


@dataclass(frozen=True)
class CudnnNeed:
    """From jax ``since`` on, the CUDA backend needs cuDNN ``major`` at version ``floor`` or later."""

    since: Version
    major: int
    floor: str


@dataclass(frozen=True)
class Knowledge:
    driver_cuda: tuple[tuple[tuple[int, int], str], ...]
    """(minimum driver (major, minor), highest CUDA it runs), newest first."""
    cuda_driver_floor: dict[int, Version]
    """CUDA major -> the oldest driver that runs it."""
    compute_cap_floor: dict[int, tuple[int, int]]
    """CUDA major -> the lowest GPU compute capability its JAX wheels support."""
    lookup_eras: tuple[tuple[Version, str], ...]
    """(first jax CUDA backend version, how it finds the CUDA libraries), newest first."""
    cudnn: tuple[CudnnNeed, ...]
    """Newest first; the last entry (since 0) is the default."""
    ptxas_pin_min: tuple[int, int]
    """The oldest CUDA release whose nvidia-cuda-nvcc wheel the CUDA 12 plugin accepts."""
    sources: dict[str, str]


def _fail(path: str, key: str, msg: str) -> MatrixError:
    return MatrixError(f"{path}: knowledge.{key}: {msg}")


def _version(path: str, key: str, text: Any) -> Version:
    try:
        return Version(str(text))
    except InvalidVersion:
        raise _fail(path, key, f"not a version: {text!r}") from None


def _pair(text: str) -> tuple[int, int]:
    major, minor = (int(x) for x in text.split(".")[:2])
    return major, minor


def parse_knowledge(raw: Any, path: str) -> Knowledge:
    """The [knowledge] tables; every table must name its public source."""
    if not isinstance(raw, dict):
        raise MatrixError(f"{path}: knowledge: must be a table of tables")
    sources = {}
    for name, table in raw.items():
        if not isinstance(table, dict) or not str(table.get("source", "")).startswith("https://"):
            raise _fail(path, name, "every table needs a source = 'https://...'")
        sources[name] = table["source"]
    try:
        return Knowledge(
            driver_cuda=tuple((_pair(d), c) for d, c in raw["driver_cuda"]["table"]),
            cuda_driver_floor={int(k.removeprefix("cuda")): _version(path, "cuda_driver_floor", v)
                               for k, v in raw["cuda_driver_floor"].items() if k.startswith("cuda")},
            compute_cap_floor={int(k.removeprefix("cuda")): _pair(v)
                               for k, v in raw["compute_cap_floor"].items() if k.startswith("cuda")},
            lookup_eras=tuple((_version(path, "lookup_eras", s), era) for s, era in raw["lookup_eras"]["table"]),
            cudnn=tuple(CudnnNeed(_version(path, "cudnn", s), int(m), str(f)) for s, m, f in raw["cudnn"]["table"]),
            ptxas_pin_min=_pair(raw["ptxas_pin"]["min_cuda"]),
            sources=sources,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise MatrixError(f"{path}: knowledge: missing or malformed entry {e}") from e


@functools.cache
def default_knowledge() -> Knowledge:
    """The [knowledge] tables of the compat_matrix.toml shipped with bdv2."""
    path = default_matrix_path()
    raw = tomllib.loads(path.read_text())
    return parse_knowledge(raw.get("knowledge"), str(path))
