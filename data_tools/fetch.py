"""`bdv2 data fetch`: the public BridgeData V2 release, or a part of it, downloaded and verified file by file.

The RLDS release (``<root>/tfds/bridge_dataset/1.0.0/``, releases.toml ``[fetch]``) is fetched shard by shard:
its own ``dataset_info.json`` lists the splits, their file name template and each shard's episode count
(``shardLengths``), so nothing about the shards is typed in here. The tree lands in the release's layout,
``<out>/bridge_dataset/1.0.0/``, which `bdv2 data identify`, `rlds-to-tfrecord` and the trainer read in place
(a part of a split is read as what it is, with a note).

What is checked, per shard (TFDS's dataset_info.json holds no per-file checksum or size):
- the size the server announced (Content-Length / Content-Range) was received in full;
- every record's two CRCs (masked crc32c of the length and of the data), by TensorFlow's own reader
  (``tf.data.TFRecordDataset`` raises DataLossError on a bad one:
  https://www.tensorflow.org/tutorials/load_data/tfrecord#tfrecords_format_details);
- the record count equals the shard's ``shardLengths`` entry;
- where a whole split was fetched, the summed record lengths equal the split's ``numBytes`` (TFDS counts the
  serialized examples there, without the 16 bytes of framing per record).
A file that fails is removed and fetched again once; a file that fails twice is an error naming it.

The raw release is one zip per collection (``demos_8_17.zip`` is 411 GB): it cannot be fetched in parts, only
whole, resumed with HTTP Range across runs; it is checked by its announced size and by its zip central
directory being readable (no checksum of the archive is published).

Verified files are remembered in ``<out>/.bdv2-fetch.json`` (name, size, mtime), so a re-run skips them
without reading them again; ``verify_all`` reads everything again.
"""

from __future__ import annotations

import json
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from bdv2.fsutil import tmp_path, write_json_atomic

from . import releases as known
from .download import FetchError, NetworkError, NotFound, download, remote_size
from .progress import FetchProgress
from .rlds import shard_names

STATE_FILE = ".bdv2-fetch.json"
FRAMING_BYTES = 16
"""Bytes of a TFRecord's framing per record: the length (8), its CRC (4), the data's CRC (4)."""
SMOKE_SPLITS = ("train", "val")
"""`--smoke`: the first shard of each of these splits (about 1/1024 of train and 1/128 of val)."""


class CorruptFile(FetchError):
    """A file still fails its checks after being fetched again."""


@dataclass(frozen=True)
class Request:
    """What to fetch and where. ``splits`` None: every split; ``shards`` None: every shard of each split."""

    out: Path
    source: str | None = None
    """A mirror of the release's public folder (releases.toml [fetch] root); None: the public address."""
    splits: tuple[str, ...] | None = None
    shards: int | None = None
    raw: bool = False
    """The raw archives instead of the RLDS release."""
    verify_all: bool = False
    jobs: int = 1
    """Files downloaded at once (a slow server per connection is faster with a few)."""
    retries: int = 3
    retry_wait_s: float = 10.0
    timeout_s: float = 60.0


@dataclass(frozen=True)
class Planned:
    """One file to have under ``out``: where it comes from and what it must be."""

    rel: str
    url: str
    kind: str
    """"tfrecord", "json" or "zip": how it is verified."""
    records: int | None = None
    estimate: int = 0
    """Expected bytes (for the progress bar's total and ETA; exact only for whole splits)."""


@dataclass
class Result:
    out: Path
    fetched: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Present and verified from an earlier run (not downloaded again)."""
    refetched: list[tuple[str, str]] = field(default_factory=list)
    """Files that failed a check (present from before, or just downloaded) and were fetched again: name, why."""
    notes: list[str] = field(default_factory=list)
    bytes: int = 0
    transfer_seconds: float = 0.0
    """Wall time of the files' transfers and checks (the rate's denominator; TensorFlow's start-up and the
    metadata are left out); ``seconds`` is the whole run."""
    seconds: float = 0.0


def base_url(request: Request, knowledge: known.Knowledge | None = None) -> tuple[str, str]:
    """(root URL, the RLDS release's folder URL): the public ones, or the same layout below ``--from``."""
    facts = (knowledge or known.load()).fetch
    if facts is None:
        raise FetchError(f"{known.RELEASES_FILE}: no [fetch] table")
    release = (knowledge or known.load()).release(facts.release)
    root = facts.root if request.source is None else request.source.rstrip("/") + "/"
    below = release.url.removeprefix(facts.root) if release.url.startswith(facts.root) else ""
    return root, urljoin(root, below)


def _dataset_rel(dataset_url: str, root: str) -> str:
    """The release folder below ``--out``: its last two URL components (bridge_dataset/1.0.0)."""
    parts = [p for p in dataset_url.removeprefix(root).split("/") if p]
    return "/".join(parts[-2:])


def plan_rlds(info: dict[str, Any], dataset_url: str, rel_dir: str, request: Request) -> list[Planned]:
    """The shards ``request`` selects, from the release's dataset_info.json (``info``).

    Raises:
        FetchError: a requested split that the release does not have.
    """
    name = info.get("name", "")
    by_name = {s["name"]: s for s in info.get("splits", [])}
    wanted = request.splits if request.splits is not None else tuple(by_name)
    unknown = [s for s in wanted if s not in by_name]
    if unknown:
        raise FetchError(f"{dataset_url}dataset_info.json: no split {unknown[0]!r} (splits: {', '.join(by_name)})")
    planned = []
    for split in wanted:
        entry = by_name[split]
        lengths = [int(n) for n in entry.get("shardLengths", [])]
        per_record = int(entry.get("numBytes", 0)) / max(sum(lengths), 1)
        names = shard_names(name, entry)
        count = len(names) if request.shards is None else min(request.shards, len(names))
        for i in range(count):
            n = lengths[i] if i < len(lengths) else None
            estimate = round((n or 0) * (per_record + FRAMING_BYTES))
            planned.append(Planned(f"{rel_dir}/{names[i]}", urljoin(dataset_url, names[i]), "tfrecord", n, estimate))
    return planned


def verify(path: Path, item: Planned) -> str | None:
    """None when ``path`` passes ``item``'s checks, else why not (one line)."""
    if item.kind == "json":
        try:
            json.loads(path.read_text())
        except (OSError, ValueError) as e:
            return f"not valid JSON ({e})"
        return None
    if item.kind == "zip":
        try:
            with zipfile.ZipFile(path) as z:
                z.infolist()
        except (OSError, zipfile.BadZipFile) as e:
            return f"not a readable zip ({e})"
        return None
    records, payload = tfrecord_counts(path)
    if isinstance(records, str):
        return records
    if item.records is not None and records != item.records:
        return f"{records} records, dataset_info.json says {item.records}"
    if payload + FRAMING_BYTES * records != path.stat().st_size:
        return "bytes after the last record"
    return None


def tfrecord_counts(path: Path) -> tuple[int | str, int]:
    """(records, summed record lengths) read by TensorFlow's reader, which checks both CRCs of every record;
    (the reason, 0) when a record is corrupt or cut."""
    import tensorflow as tf

    try:
        records, payload = tf.data.TFRecordDataset(str(path)).reduce(
            (tf.constant(0, tf.int64), tf.constant(0, tf.int64)),
            lambda acc, r: (acc[0] + 1, acc[1] + tf.cast(tf.strings.length(r), tf.int64)))
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as e:
        return f"corrupt TFRecord ({e.message.splitlines()[0]})", 0
    return int(records), int(payload)


class _State:
    """The files verified so far (``<out>/.bdv2-fetch.json``: name -> [size, mtime_ns]), saved after each one."""

    def __init__(self, out: Path) -> None:
        self.lock = threading.Lock()  # with --jobs, files finish in several threads
        self.path = out / STATE_FILE
        try:
            self.files: dict[str, list[int]] = json.loads(self.path.read_text()).get("verified", {})
        except (OSError, ValueError, AttributeError):
            self.files = {}

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]

    def known_good(self, rel: str, path: Path) -> bool:
        return path.is_file() and self.files.get(rel) == self._stamp(path)

    def mark(self, rel: str, path: Path) -> None:
        with self.lock:
            self.files[rel] = self._stamp(path)
            write_json_atomic(self.path, {"verified": dict(self.files)})

    def forget(self, rel: str) -> None:
        with self.lock:
            self.files.pop(rel, None)


def _with_retries(request: Request, item: Planned, dest: Path, progress: FetchProgress) -> int:
    """Download ``item``, resuming after a dropped connection up to ``request.retries`` times in this run."""
    for attempt in range(request.retries + 1):
        try:
            return download(item.url, dest, on_bytes=progress.advance, timeout_s=request.timeout_s)
        except NotFound:
            raise
        except NetworkError:
            if attempt == request.retries:
                raise
            time.sleep(request.retry_wait_s)
    raise AssertionError("unreachable")


def _obtain(request: Request, item: Planned, state: _State, progress: FetchProgress, result: Result) -> None:
    """Make ``out/item.rel`` a verified copy: keep it, check it, or fetch it (again)."""
    dest = request.out / item.rel
    if not request.verify_all and state.known_good(item.rel, dest):
        result.kept.append(item.rel)
        return
    if dest.is_file():
        why = verify(dest, item)
        if why is None:
            state.mark(item.rel, dest)
            result.kept.append(item.rel)
            return
        result.refetched.append((item.rel, why))
        state.forget(item.rel)
        dest.unlink()
    progress.file(item.rel)
    for attempt in (1, 2):
        got = _with_retries(request, item, dest, progress)
        with state.lock:
            result.bytes += got
        why = verify(dest, item)
        if why is None:
            state.mark(item.rel, dest)
            result.fetched.append(item.rel)
            return
        dest.unlink()
        if attempt == 2:
            raise CorruptFile(f"{item.url}: fetched twice, fails both times: {why}")
        result.refetched.append((item.rel, why))


def _split_totals(info: dict[str, Any], rel_dir: str, out: Path, result: Result) -> None:
    """Where every shard of a split is here: its summed record lengths against dataset_info.json numBytes."""
    for entry in info.get("splits", []):
        names = shard_names(info.get("name", ""), entry)
        paths = [out / rel_dir / n for n in names]
        if int(entry.get("numBytes", 0)) <= 0 or not all(p.is_file() for p in paths):  # 0: not recorded
            continue
        size = sum(p.stat().st_size for p in paths) - FRAMING_BYTES * sum(int(n) for n in entry["shardLengths"])
        if size != int(entry["numBytes"]):
            raise CorruptFile(f"{out / rel_dir}: split {entry['name']!r} holds {size} bytes of records, "
                              f"dataset_info.json numBytes says {entry['numBytes']}")
        result.notes.append(f"split {entry['name']!r} complete: {len(names)} shards, "
                            f"{sum(int(n) for n in entry['shardLengths'])} episodes, numBytes matches")


def _metadata(request: Request, dataset_url: str, rel_dir: str, names: tuple[str, ...], state: _State,
              progress: FetchProgress, result: Result) -> dict[str, Any]:
    for name in names:
        _obtain(request, Planned(f"{rel_dir}/{name}", urljoin(dataset_url, name), "json"), state, progress, result)
    info: dict[str, Any] = json.loads((request.out / rel_dir / "dataset_info.json").read_text())
    return info


def fetch(request: Request, progress: FetchProgress | None = None) -> Result:
    """Bring the requested part of the release into ``request.out``, verified; see the module docstring.

    Raises:
        NotFound, NetworkError: a file could not be downloaded (what was finished is kept; a ``.partial`` file
            is resumed by the next run).
        DiskFull: the output's file system is full (the unfinished file is removed).
        CorruptFile: a file fails its checks after being fetched again.
    """
    sink = progress or FetchProgress()
    started = time.monotonic()
    knowledge = known.load()
    root, dataset_url = base_url(request, knowledge)
    result = Result(request.out)
    state = _State(request.out)
    request.out.mkdir(parents=True, exist_ok=True)
    assert knowledge.fetch is not None
    if request.raw:
        planned = [Planned(a, urljoin(root, a), "zip") for a in knowledge.fetch.raw_archives]
        planned = [Planned(p.rel, p.url, "zip", None, _size_or_zero(p, request)) for p in planned]
    else:
        rel_dir = _dataset_rel(dataset_url, root)
        info = _metadata(request, dataset_url, rel_dir, knowledge.fetch.metadata, state, sink, result)
        planned = plan_rlds(info, dataset_url, rel_dir, request)
    todo = [p for p in planned if request.verify_all or not state.known_good(p.rel, request.out / p.rel)]
    if todo and not request.raw:
        import tensorflow  # noqa: F401  (its start-up, seconds, before the clocks of the transfers start)
    sink.start(len(todo), sum(p.estimate - _partial_bytes(request.out / p.rel) for p in todo))
    began = time.monotonic()
    if request.jobs <= 1:
        for item in planned:
            _obtain(request, item, state, sink, result)
    else:
        _in_parallel(request, planned, state, sink, result)
    result.transfer_seconds = time.monotonic() - began
    if not request.raw:
        _split_totals(info, rel_dir, request.out, result)
    result.seconds = time.monotonic() - started
    return result


def _in_parallel(request: Request, planned: list[Planned], state: _State, sink: FetchProgress,
                 result: Result) -> None:
    """`_obtain` over ``request.jobs`` threads; the first error stops what has not started and is raised once
    the running transfers end (each of them leaves a finished file or a .partial one)."""
    with ThreadPoolExecutor(request.jobs) as pool:
        futures = [pool.submit(_obtain, request, item, state, sink, result) for item in planned]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _size_or_zero(item: Planned, request: Request) -> int:
    try:
        return remote_size(item.url, request.timeout_s) or 0
    except NotFound:
        raise
    except NetworkError:
        return 0


def _partial_bytes(final: Path) -> int:
    tmp = tmp_path(final)
    return tmp.stat().st_size if tmp.is_file() else 0
