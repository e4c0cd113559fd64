"""The known BridgeData releases, key schemes and raw collections, loaded from releases.toml (data with a source
beside every fact; this module only reads it). Stdlib only."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataToolsError

RELEASES_FILE = Path(__file__).resolve().parent / "releases.toml"


@dataclass(frozen=True)
class Release:
    id: str
    title: str
    format: str
    dataset_name: str
    version: str
    keys: str
    url: str
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    """split -> {"shards": n, "episodes": n}, only the published facts."""
    episodes_total: int | None = None
    transitions_total: int | None = None
    image_size: tuple[int, int] | None = None
    first_records: dict[str, str] = field(default_factory=dict)
    derivative_of: str | None = None
    description_contains: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def checked(self) -> str:
        return self.sources.get("checked", "")


@dataclass(frozen=True)
class KeyScheme:
    id: str
    title: str
    required: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class RawSource:
    dir: str
    title: str
    generation: str
    source: str


@dataclass(frozen=True)
class FetchSource:
    """Where `bdv2 data fetch` downloads from ([fetch] in releases.toml)."""

    root: str
    """The public folder of the release; a mirror repeats its layout."""
    release: str
    """The id of the RLDS release fetched; its `url` below `root` is where its files are."""
    metadata: tuple[str, ...]
    raw_archives: tuple[str, ...]
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Knowledge:
    releases: tuple[Release, ...]
    keys: tuple[KeyScheme, ...]
    raw_sources: tuple[RawSource, ...]
    fetch: FetchSource | None = None

    def release(self, release_id: str) -> Release:
        return next(r for r in self.releases if r.id == release_id)


def _release(d: dict[str, Any]) -> Release:
    size = d.get("image_size")
    return Release(
        d["id"], d["title"], d["format"], d["dataset_name"], d["version"], d["keys"], d["url"],
        {k: {kk: int(vv) for kk, vv in v.items()} for k, v in d.get("splits", {}).items()},
        d.get("episodes_total"), d.get("transitions_total"), (int(size[0]), int(size[1])) if size else None,
        dict(d.get("first_records", {})), d.get("derivative_of"), d.get("description_contains"),
        {k: str(v) for k, v in d.get("sources", {}).items()}, d.get("note", ""))


def load(path: Path = RELEASES_FILE) -> Knowledge:
    """Raises: DataToolsError naming the file and the entry when it is malformed."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise DataToolsError(f"{path}: unreadable ({e})") from None
    try:
        releases = tuple(_release(r) for r in data.get("release", []))
        keys = tuple(KeyScheme(k["id"], k["title"], tuple(k["required"]), k["source"]) for k in data.get("keys", []))
        raw = tuple(RawSource(r["dir"], r["title"], r["generation"], r["source"]) for r in data.get("raw_source", []))
        f = data.get("fetch")
        fetch = None if f is None else FetchSource(
            f["root"], f["release"], tuple(f["metadata"]), tuple(f["raw_archives"]),
            {k: str(v) for k, v in f.get("sources", {}).items()})
    except (KeyError, TypeError, ValueError) as e:
        raise DataToolsError(f"{path}: malformed entry ({type(e).__name__}: {e})") from None
    for r in releases:
        if r.keys not in {k.id for k in keys}:
            raise DataToolsError(f"{path}: release {r.id!r} names key scheme {r.keys!r}, which is not defined")
    if fetch is not None and fetch.release not in {r.id for r in releases}:
        raise DataToolsError(f"{path}: [fetch] names release {fetch.release!r}, which is not defined")
    return Knowledge(releases, keys, raw, fetch)
