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

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ..errors import MatrixError


def default_matrix_path() -> Path:
    return Path(str(resources.files("bdv2.doctor").joinpath("compat_matrix.toml")))


@dataclass(frozen=True)
class CudnnNeed:
    """From jax ``since`` on, the CUDA backend needs cuDNN ``major`` at version ``floor`` or later."""

    since: Version
    major: int
    floor: str


@dataclass(frozen=True)
class TfPins:
    """What TensorFlow releases from ``since`` on declare (Requires-Dist) for ml-dtypes, NumPy and protobuf."""

    since: Version
    ml_dtypes: SpecifierSet
    numpy: SpecifierSet
    protobuf: SpecifierSet

    @property
    def needs_numpy1(self) -> bool:
        return not self.numpy.contains("2.0.0")


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
    cudnn_cuda13: str
    """The lowest cuDNN the CUDA 13 plugin accepts."""
    min_jaxlib: tuple[tuple[Version, Version], ...]
    """(first jax release, the oldest jaxlib it imports with), newest first, for jax releases that did not yet
    declare jaxlib in their metadata."""
    tensorflow: tuple[TfPins, ...]
    """TensorFlow's own pins per release span, newest first."""
    numpy2_jaxlib: Version
    """The first jaxlib built for NumPy 2 (older ones need NumPy 1)."""
    numpy2_tensorflow: Version
    """The first TensorFlow built for NumPy 2 (TF 2.14 declares no NumPy cap but is built for NumPy 1)."""
    plugin_exact_since: Version
    """From this jaxlib on, a jax CUDA plugin of another version is ignored (it must equal jaxlib)."""

    def tf_pins(self, tf: Version) -> TfPins | None:
        """The pins the TensorFlow release ``tf`` declares (None before the table's oldest entry)."""
        return next((p for p in self.tensorflow if tf >= p.since), None)

    def min_jaxlib_for(self, jax: Version) -> Version | None:
        return next((m for since, m in self.min_jaxlib if jax >= since), None)


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


def _spec(path: str, key: str, text: Any) -> SpecifierSet:
    try:
        return SpecifierSet(str(text))
    except InvalidSpecifier:
        raise _fail(path, key, f"not a version specifier: {text!r}") from None


def _tf_pins(path: str, table: Any) -> tuple[TfPins, ...]:
    return tuple(TfPins(_version(path, "tensorflow", s), _spec(path, "tensorflow", m), _spec(path, "tensorflow", n),
                        _spec(path, "tensorflow", p)) for s, m, n, p in table)


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
            cudnn_cuda13=str(raw["cudnn"]["cuda13"]),
            min_jaxlib=tuple((_version(path, "min_jaxlib", s), _version(path, "min_jaxlib", m))
                             for s, m in raw["min_jaxlib"]["table"]),
            tensorflow=_tf_pins(path, raw["tensorflow"]["table"]),
            numpy2_jaxlib=_version(path, "numpy2", raw["numpy2"]["jaxlib"]),
            numpy2_tensorflow=_version(path, "numpy2", raw["numpy2"]["tensorflow"]),
            plugin_exact_since=_version(path, "plugin_lockstep", raw["plugin_lockstep"]["since"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise MatrixError(f"{path}: knowledge: missing or malformed entry {e}") from e


@functools.cache
def default_knowledge() -> Knowledge:
    """The [knowledge] tables of the compat_matrix.toml shipped with bdv2."""
    path = default_matrix_path()
    raw = tomllib.loads(path.read_text())
    return parse_knowledge(raw.get("knowledge"), str(path))
