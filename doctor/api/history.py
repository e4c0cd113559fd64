"""The API history of the JAX ecosystem, read from the shipped index (api_history.json.gz, built from the
released wheels by tools/api_history/build.py): which releases of a package have a public ``module.name``, and
which releases of a caller (flax, optax, ...) use a ``jax.…`` name some jax release lacks. Stdlib only.

Index format 1: ``packages[pkg] = {"releases": [v0, v1, ...] (oldest first), "names": {"module.name":
[[first, last], ...]}, "opaque": {"module": [[first, last], ...]}, "uses": {"jax": {"jax.name": [[first,
last], ...]}}}``, indices into ``releases``; ``opaque``: the releases in which a module's names are not all known.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX = Path(__file__).with_name("api_history.json.gz")
Ranges = list[list[int]]


def to_ranges(indices: list[int]) -> Ranges:
    """[0, 1, 2, 5, 6] -> [[0, 2], [5, 6]]."""
    out: Ranges = []
    for i in indices:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def release_key(version: str) -> tuple[int, ...]:
    """The numeric release of a version string (``0.4.26.dev1`` -> (0, 4, 26)); pre-releases sort as their
    release."""
    m = re.match(r"v?(\d+(?:\.\d+)*)", version.strip())
    return tuple(int(p) for p in m[1].split(".")) if m else ()


def position(releases: tuple[str, ...], version: str) -> int | None:
    """Where ``version`` is in ``releases``: itself, or its minor for packages recorded by minor ("2.0")."""
    for v in (version, ".".join(version.split(".")[:2])):
        if v in releases:
            return releases.index(v)
    return None


def _inside(ranges: Ranges, i: int) -> bool:
    return any(a <= i <= b for a, b in ranges)


@dataclass(frozen=True)
class Verdict:
    """What the history says about one name of one package."""

    package: str
    key: str
    """The name judged: the first element of the asked chain that is not a module (or the last module)."""
    ranges: Ranges
    releases: tuple[str, ...]

    @property
    def known(self) -> bool:
        return bool(self.ranges)

    @property
    def first(self) -> str | None:
        return self.releases[self.ranges[0][0]] if self.ranges else None

    @property
    def last(self) -> str | None:
        return self.releases[self.ranges[-1][1]] if self.ranges else None

    @property
    def removed_in(self) -> str | None:
        """The first release after the name's last one (None while the newest covered release has it)."""
        end = self.ranges[-1][1] if self.ranges else None
        return self.releases[end + 1] if end is not None and end + 1 < len(self.releases) else None

    def present_in(self, version: str) -> bool | None:
        """Whether ``version`` has the name; None when the history does not cover that version."""
        i = position(self.releases, version)
        return None if i is None else _inside(self.ranges, i)


class History:
    def __init__(self, data: dict[str, object]) -> None:
        self.data = data
        self.packages: dict[str, dict[str, Any]] = data.get("packages", {})  # type: ignore[assignment]
        self._mods: dict[str, frozenset[str]] = {}

    def releases(self, pkg: str) -> tuple[str, ...]:
        p = self.packages.get(pkg)
        return tuple(p["releases"]) if p else ()

    def covers(self, pkg: str, version: str) -> bool:
        return position(self.releases(pkg), version) is not None

    def _names(self, pkg: str) -> dict[str, Ranges]:
        names: dict[str, Ranges] = self.packages.get(pkg, {}).get("names", {})
        return names

    def judged_key(self, pkg: str, dotted: str) -> str | None:
        """The element of ``a.b.c.d`` the history can judge: walk the modules (``jax``, ``jax.interpreters``,
        ``jax.interpreters.xla``) while the name is a module in some release, and stop at the first name that
        is not one (``...xla.DeviceArray``); an attribute of that (a method) is beyond the index. None when
        the chain's module was never in the package."""
        names = self._names(pkg)
        parts = dotted.split(".")
        if parts[0] not in names:
            return None
        key = parts[0]
        for p in parts[1:]:
            key = f"{key}.{p}"
            if key not in self.modules(pkg):
                return key
        return key

    def modules(self, pkg: str) -> frozenset[str]:
        """Every key that has names under it in some release: a module or package."""
        if pkg not in self._mods:
            self._mods[pkg] = frozenset(k.rsplit(".", 1)[0] for k in self._names(pkg) if "." in k)
        return self._mods[pkg]

    def verdict(self, pkg: str, dotted: str) -> Verdict | None:
        """What the history knows of ``dotted``; None when the package or module is not covered, or when a
        release lacking the name has a module whose names are not all known (it star-imports a compiled module
        with no .pyi: ``opaque`` in the index): no claim is better than a wrong one."""
        key = self.judged_key(pkg, dotted)
        if key is None:
            return None
        ranges = self._names(pkg).get(key, [])
        opaque: Ranges = self.packages[pkg].get("opaque", {}).get(key.rsplit(".", 1)[0], [])
        if key not in self.modules(pkg) and any(not _inside(ranges, i) for a, b in opaque for i in range(a, b + 1)):
            return None
        return Verdict(pkg, key, ranges, self.releases(pkg))

    def always_present(self, pkg: str, key: str) -> bool:
        return self._names(pkg).get(key) == [[0, len(self.releases(pkg)) - 1]]

    def uses(self, caller: str, key: str, of: str = "jax") -> Verdict | None:
        """The caller releases that use ``key`` of ``of`` (None: the caller is not covered)."""
        p = self.packages.get(caller)
        if not p or of not in p.get("uses", {}):
            return None
        table: dict[str, Ranges] = p["uses"][of]
        return Verdict(caller, key, table.get(key, []), self.releases(caller))

    def first_without(self, caller: str, key: str, after: str | None = None) -> str | None:
        """The first caller release (newer than ``after``) that does not use ``key``, when one exists and no
        later covered release uses it again."""
        v = self.uses(caller, key)
        if v is None or not v.ranges or v.ranges[-1][1] == len(v.releases) - 1:
            return None
        candidate = v.releases[v.ranges[-1][1] + 1]
        if after and release_key(candidate) <= release_key(after):
            return None
        return candidate


@functools.lru_cache(maxsize=2)
def load(path: str | None = None) -> History | None:
    """The shipped history (None when the file is absent or unreadable: callers then say nothing)."""
    import gzip
    import json

    p = Path(path) if path else INDEX
    try:
        return History(json.loads(gzip.decompress(p.read_bytes())))
    except (OSError, ValueError):
        return None
