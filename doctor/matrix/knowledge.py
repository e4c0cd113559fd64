"""Version thresholds the GPU checks compare against, read from the [knowledge] tables of compat_matrix.toml.

They are facts about other projects (NVIDIA's driver table, JAX's cuDNN and library-lookup history), so they
live in the data file with a public source each, not as literals in code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ..errors import MatrixError
from .shipped import default_matrix_path, shipped_toml

__all__ = ["CudnnNeed", "Knowledge", "NvccWheel", "TfPins", "default_knowledge", "default_matrix_path",
           "parse_knowledge"]


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
class NvccWheel:
    """The nvidia-cuda-nvcc wheel (ptxas) jax needs at least, for one CUDA major."""

    cuda_major: int
    wheel: str
    floor: str


@dataclass(frozen=True)
class Knowledge:
    """The [knowledge.*] tables of a matrix, parsed."""

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
    nvcc: tuple[NvccWheel, ...]
    """The ptxas wheel and its lowest version, per CUDA major."""
    sources: dict[str, str]
    """Table name -> its source; a fact with a source of its own is in ``fact_sources``."""
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
    numpy2_ml_dtypes: Version
    """The first ml-dtypes built for NumPy 2: raising ml-dtypes to it next to a NumPy-1 stack caps NumPy."""
    plugin_exact_since: Version
    """From this jaxlib on, a jax CUDA plugin of another version is ignored (it must equal jaxlib)."""
    plugins_only_since: Version
    """The first jax with no '+cuda' jaxlib builds: CUDA comes from the plugins only."""
    cudnn89_build_before: Version
    """A jaxlib older than this gets its '+cuda12.cudnn89' build as the fix."""
    tfp_for_tf: tuple[tuple[Version, str], ...]
    """(TensorFlow below, the TFP release made for it), oldest first."""
    tfp_newest: str
    """The TFP release for a TensorFlow at or above the table's last bound."""
    tfp_nightly_distrax: Version
    """The first distrax that depends on tfp-nightly."""
    tfp_nightly_jax: Version
    """The first jax the released TFP's JAX substrate does not work with."""
    tensorstore_ml_dtypes_05: Version
    """The first tensorstore whose wheel requires ml_dtypes >= 0.5.0."""
    orbax_new_tensorstore: Version
    """The first orbax-checkpoint that needs a tensorstore at least that new."""
    fact_sources: dict[str, str] = field(default_factory=dict)
    """'table.key' or 'table[i]' -> the source of a fact that names its own (else its table's source holds)."""

    @property
    def ptxas_pin_min(self) -> tuple[int, int]:
        """The oldest CUDA release whose nvidia-cuda-nvcc wheel the CUDA 12 plugin accepts."""
        return _pair(self.nvcc_for(12).floor)

    def nvcc_for(self, cuda_major: int) -> NvccWheel:
        """The ptxas wheel of ``cuda_major`` (CUDA 13's for majors the table does not name)."""
        return next((w for w in self.nvcc if w.cuda_major == cuda_major),
                    next(w for w in self.nvcc if w.cuda_major == 13))

    def tf_pins(self, tf: Version) -> TfPins | None:
        """The pins the TensorFlow release ``tf`` declares (None before the table's oldest entry)."""
        return next((p for p in self.tensorflow if tf >= p.since), None)

    def min_jaxlib_for(self, jax: Version) -> Version | None:
        return next((m for since, m in self.min_jaxlib if jax >= since), None)

    def tfp_for(self, tf: Version) -> str:
        """The TensorFlow Probability release made for TensorFlow ``tf``."""
        return next((tfp for below, tfp in self.tfp_for_tf if tf < below), self.tfp_newest)


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


class _Tables:
    """Reads the [knowledge.*] tables by name: each row of a ``table`` is an inline table with named fields, and a
    row or a single fact may carry its own ``source`` (recorded in ``sources``)."""

    def __init__(self, raw: dict[str, Any], path: str):
        self.raw, self.path = raw, path
        self.sources: dict[str, str] = {}

    def _source(self, where: str, entry: dict[str, Any]) -> None:
        if "source" in entry:
            if not str(entry["source"]).startswith("https://"):
                raise _fail(self.path, where, "a source must be an https:// URL")
            self.sources[where] = str(entry["source"])

    def rows(self, name: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
        table = self.raw[name]["table"]
        if not isinstance(table, list):
            raise _fail(self.path, name, "'table' must be a list of inline tables")
        for i, row in enumerate(table):
            where = f"{name}.table[{i}]"
            if not isinstance(row, dict):
                raise _fail(self.path, where, f"must be an inline table with {', '.join(fields)}")
            unknown, missing = set(row) - {*fields, "source"}, set(fields) - set(row)
            if unknown or missing:
                raise _fail(self.path, where, f"needs exactly {', '.join(fields)} (and optionally source); "
                            + (f"unknown: {sorted(unknown)[0]}" if unknown else f"missing: {sorted(missing)[0]}"))
            self._source(where, row)
        return table

    def fact(self, name: str, key: str, field_name: str = "version") -> Any:
        """A single value, written plainly (``since = "0.5.3"``) or with its own source
        (``tensorflow = { version = "2.18.0", source = "https://..." }``)."""
        value = self.raw[name][key]
        if isinstance(value, dict):
            self._source(f"{name}.{key}", value)
            return value[field_name]
        return value


def parse_knowledge(raw: Any, path: str) -> Knowledge:
    """The [knowledge] tables; every table must name its public source."""
    if not isinstance(raw, dict):
        raise MatrixError(f"{path}: knowledge: must be a table of tables")
    sources = {}
    for name, table in raw.items():
        if not isinstance(table, dict) or not str(table.get("source", "")).startswith("https://"):
            raise _fail(path, name, "every table needs a source = 'https://...'")
        sources[name] = table["source"]
    t = _Tables(raw, path)
    try:
        v = functools.partial(_version, path)
        tfp = t.rows("tfp", ("tensorflow_below", "tfp"))
        return Knowledge(
            driver_cuda=tuple((_pair(r["driver"]), str(r["cuda"])) for r in t.rows("driver_cuda", ("driver", "cuda"))),
            cuda_driver_floor={int(r["cuda_major"]): v("cuda_driver_floor", r["driver"])
                               for r in t.rows("cuda_driver_floor", ("cuda_major", "driver"))},
            compute_cap_floor={int(r["cuda_major"]): _pair(r["compute_cap"])
                               for r in t.rows("compute_cap_floor", ("cuda_major", "compute_cap"))},
            lookup_eras=tuple((v("lookup_eras", r["since"]), str(r["era"]))
                              for r in t.rows("lookup_eras", ("since", "era"))),
            cudnn=tuple(CudnnNeed(v("cudnn", r["since"]), int(r["cudnn_major"]), str(r["floor"]))
                        for r in t.rows("cudnn", ("since", "cudnn_major", "floor"))),
            nvcc=tuple(NvccWheel(int(r["cuda_major"]), str(r["wheel"]), str(r["floor"]))
                       for r in t.rows("ptxas_pin", ("cuda_major", "wheel", "floor"))),
            sources=sources,
            cudnn_cuda13=str(t.fact("cudnn", "cuda13", "floor")),
            min_jaxlib=tuple((v("min_jaxlib", r["since"]), v("min_jaxlib", r["jaxlib"]))
                             for r in t.rows("min_jaxlib", ("since", "jaxlib"))),
            tensorflow=tuple(TfPins(v("tensorflow", r["since"]), _spec(path, "tensorflow", r["ml_dtypes"]),
                                    _spec(path, "tensorflow", r["numpy"]), _spec(path, "tensorflow", r["protobuf"]))
                             for r in t.rows("tensorflow", ("since", "ml_dtypes", "numpy", "protobuf"))),
            numpy2_jaxlib=v("numpy2", t.fact("numpy2", "jaxlib")),
            numpy2_tensorflow=v("numpy2", t.fact("numpy2", "tensorflow")),
            numpy2_ml_dtypes=v("numpy2", t.fact("numpy2", "ml_dtypes")),
            plugin_exact_since=v("plugin_lockstep", t.fact("plugin_lockstep", "since")),
            plugins_only_since=v("cuda_jaxlib", t.fact("cuda_jaxlib", "plugins_only_since")),
            cudnn89_build_before=v("cuda_jaxlib", t.fact("cuda_jaxlib", "cudnn89_build_before")),
            tfp_for_tf=tuple((v("tfp", r["tensorflow_below"]), str(r["tfp"])) for r in tfp),
            tfp_newest=str(t.fact("tfp", "newest", "tfp")),
            tfp_nightly_distrax=v("tfp", t.fact("tfp", "nightly_for_distrax", "since")),
            tfp_nightly_jax=v("tfp", t.fact("tfp", "nightly_for_jax", "since")),
            tensorstore_ml_dtypes_05=v("ml_dtypes_movers", t.fact("ml_dtypes_movers", "tensorstore")),
            orbax_new_tensorstore=v("ml_dtypes_movers", t.fact("ml_dtypes_movers", "orbax_checkpoint")),
            fact_sources=t.sources,
        )
    except MatrixError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise MatrixError(f"{path}: knowledge: missing or malformed entry {e}") from e


@functools.cache
def default_knowledge() -> Knowledge:
    """The [knowledge] tables of the compat_matrix.toml shipped with bdv2."""
    raw, _ = shipped_toml()
    return parse_knowledge(raw.get("knowledge"), str(default_matrix_path()))
