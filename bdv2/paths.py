"""Paths that may be URLs (``gs://bucket/data``, ``file:///data``, ``ram://...``): the one path layer that data
roots, metadata files and converter inputs and outputs go through.

A local path stays a :class:`pathlib.Path` (no TensorFlow import for the common case). A URL becomes a
:class:`GPath`, a small pathlib-like face over ``tf.io.gfile``
(https://www.tensorflow.org/api_docs/python/tf/io/gfile): the file systems TensorFlow's readers open
(``tf.data.TFRecordDataset`` reads the same URLs), so a folder the trainer globs is a folder its input
pipeline can read. Which schemes work is what the installed TensorFlow registers
(``tf.io.gfile.get_registered_schemes()``: ``gs``, ``file``, ``ram``, ``hdfs`` ...; ``s3`` comes with
tensorflow-io); any other scheme is refused in one line by :func:`scheme_problem`.

TensorFlow is imported only when a URL is first used.
"""

from __future__ import annotations

import errno
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any, NamedTuple

from .storage import StorageProblem, remote_scheme

__all__ = ["OBJECT_STORES", "ORBAX_SCHEMES", "AnyPath", "GPath", "as_path", "check_writable", "is_url", "local_shadow",
           "orbax_path", "orbax_problem", "registered_schemes", "scheme_problem"]

OBJECT_STORES = frozenset({"gs", "s3", "az", "hf"})
"""Schemes of object stores: an object appears whole when its upload completes (a single put is atomic), a
rename is a copy and a delete, and there is no exclusive create, append or free-space figure."""

ORBAX_SCHEMES = frozenset({"gs", "s3", "az", "hf"})
"""The URL schemes orbax's path layer (``etils.epath``) opens; it takes every other URL for a relative local
path. ``file://`` URLs are given to it as the local path they name."""

LOCAL_DIR_ENV = "BDV2_LOCAL_DIR"
"""Where the local side of a remote run folder lives (default ``~/.cache/bdv2/remote``): see local_shadow."""


def _gfile() -> Any:
    import tensorflow as tf  # a URL is in use: TensorFlow is the reader anyway

    return tf.io.gfile


@contextmanager
def _as_oserror(url: str) -> Iterator[None]:
    """TensorFlow's file-system errors (its own types) as the OSError subclasses callers already handle."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.NotFoundError as e:
        raise FileNotFoundError(errno.ENOENT, e.message, url) from e
    except tf.errors.PermissionDeniedError as e:
        raise PermissionError(errno.EACCES, e.message, url) from e
    except tf.errors.AlreadyExistsError as e:
        raise FileExistsError(errno.EEXIST, e.message, url) from e
    except tf.errors.OpError as e:
        raise OSError(errno.EIO, e.message, url) from e


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(path, GPath) or (isinstance(path, str) and remote_scheme(path) is not None)


def registered_schemes() -> list[str]:
    """The URL schemes the installed TensorFlow can open (``file`` included)."""
    return sorted(s for s in _gfile().get_registered_schemes() if s)


def scheme_problem(path: str | GPath, what: str) -> StorageProblem | None:
    """None for a local path or a URL whose scheme TensorFlow can open; else the one line to show."""
    scheme = remote_scheme(str(path))
    if scheme is None:
        return None
    known = registered_schemes()
    if scheme in known:
        return None
    extra = " (s3:// comes with `pip install tensorflow-io`)" if scheme == "s3" else ""
    return StorageProblem(str(path), f"the installed TensorFlow cannot open {scheme}:// URLs (it opens "
                          f"{', '.join(s + '://' for s in known)}){extra}",
                          f"give {what} as one of those, or mount the storage as a local folder")


def check_writable(url: GPath, what: str) -> StorageProblem | None:
    """None if a file can be created (and removed) in the folder ``url``; else the problem, in one line. (Free
    space is not checked: an object store has no such figure.)"""
    probe = url / f".bdv2-write-test-{uuid.uuid4().hex[:12]}"
    try:
        url.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        return StorageProblem(str(url), f"cannot write here: {' '.join(str(e.strerror or e).split())}",
                              f"check the URL, the network and the credentials, or choose another {what}")
    return None


def local_shadow(url: GPath | str) -> Path:
    """The local folder that stands beside the remote folder ``url``: what cannot live on an object store (the
    run lock's exclusive file, the process's own log while it grows, metrics being appended, jax's compilation
    cache). One per URL, the same in every process of this machine: ``$BDV2_LOCAL_DIR/<scheme>-<hash>-<name>``
    (default ``~/.cache/bdv2/remote``). Not created here."""
    import hashlib
    import os

    url = GPath(url)
    base = Path(os.environ.get(LOCAL_DIR_ENV) or Path.home() / ".cache" / "bdv2" / "remote").expanduser()
    digest = hashlib.sha256(str(url).encode()).hexdigest()[:16]
    return base / f"{url.scheme}-{digest}-{url.name or 'root'}"


def orbax_problem(path: str | GPath, what: str) -> StorageProblem | None:
    """None when orbax can keep checkpoints under ``path`` (a local path, ``file://`` or one of ORBAX_SCHEMES);
    else the one line to show."""
    scheme = remote_scheme(str(path))
    if scheme is None or scheme == "file" or scheme in ORBAX_SCHEMES:
        return None
    return StorageProblem(str(path), f"orbax (its etils.epath path layer) cannot keep checkpoints under {scheme}:// "
                          f"(it opens local paths and {', '.join(s + '://' for s in sorted(ORBAX_SCHEMES))})",
                          f"give {what} as one of those")


def orbax_path(path: AnyPath | str) -> Any:
    """``path`` as orbax takes it: an absolute local :class:`Path` (a ``file://`` URL becomes the path it
    names), or an ``etils.epath.Path`` for gs://, s3://, az://, hf:// (epath opens them through the same
    ``tf.io.gfile`` as this module when TensorFlow is installed; orbax's array data goes through tensorstore).

    Raises:
        ValueError: a scheme orbax cannot open (orbax_problem's line).
    """
    if not is_url(path) and not isinstance(path, GPath):
        return Path(path).expanduser().resolve()
    url = GPath(str(path))
    if url.scheme == "file":
        return Path(url._rest)
    bad = orbax_problem(url, "the folder")
    if bad is not None:
        raise ValueError(str(bad))
    from etils import epath

    return epath.Path(str(url))


class UrlStat(NamedTuple):
    """The part of ``os.stat_result`` that ``tf.io.gfile.stat`` gives."""

    st_size: int
    st_mtime: float


class GPath:
    """A URL with the part of the pathlib interface the data tools and the trainer use, over ``tf.io.gfile``.

    ``scheme://`` is kept intact (``PurePosixPath`` would collapse it to ``scheme:/``); everything after it is
    joined and split as a POSIX path. ``relative_to`` returns a :class:`PurePosixPath`.
    """

    __slots__ = ("_url",)

    def __init__(self, url: str | GPath) -> None:
        url = str(url)
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError(f"{url}: not a URL (scheme://...)")
        rest = posixpath.normpath(rest) if rest not in ("", "/") else rest
        if rest == ".":
            rest = ""
        self._url = f"{scheme}://{rest}"

    # -- pure path ------------------------------------------------------------------------------------
    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"GPath({self._url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GPath) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    def __lt__(self, other: GPath) -> bool:
        return self._url < other._url

    def __truediv__(self, part: str | PurePosixPath | Path) -> GPath:
        return GPath(self._url.rstrip("/") + "/" + str(part).lstrip("/"))

    def joinpath(self, *parts: str) -> GPath:
        out = self
        for p in parts:
            out = out / p
        return out

    @property
    def _rest(self) -> str:
        return self._url.partition("://")[2]

    @property
    def scheme(self) -> str:
        return self._url.partition("://")[0]

    @property
    def name(self) -> str:
        return posixpath.basename(self._rest.rstrip("/"))

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> GPath:
        head = posixpath.dirname(self._rest.rstrip("/"))
        return GPath(f"{self.scheme}://{head}")

    @property
    def parts(self) -> tuple[str, ...]:
        return (f"{self.scheme}://", *PurePosixPath(self._rest).parts)

    def with_name(self, name: str) -> GPath:
        return self.parent / name

    def relative_to(self, other: object) -> PurePosixPath:
        base = str(other).rstrip("/")
        if self._url == base:
            return PurePosixPath(".")
        if not self._url.startswith(base + "/"):
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self._url[len(base) + 1:])

    def is_absolute(self) -> bool:
        return True

    def expanduser(self) -> GPath:
        return self

    def absolute(self) -> GPath:
        return self

    def resolve(self) -> GPath:
        return self

    # -- file system (TensorFlow's errors become OSErrors) ---------------------------------------------
    def exists(self) -> bool:
        with _as_oserror(self._url):
            return bool(_gfile().exists(self._url))

    def is_dir(self) -> bool:
        with _as_oserror(self._url):
            return bool(_gfile().isdir(self._url))

    def is_file(self) -> bool:
        with _as_oserror(self._url):
            g = _gfile()
            return bool(g.exists(self._url) and not g.isdir(self._url))

    def iterdir(self) -> Iterator[GPath]:
        with _as_oserror(self._url):
            entries = sorted(_gfile().listdir(self._url))
        for entry in entries:
            yield self / entry.rstrip("/")

    def glob(self, pattern: str) -> Iterator[GPath]:
        """``tf.io.gfile.glob`` below this folder (``*``, ``?``, ``[...]``; no ``**``)."""
        with _as_oserror(self._url):
            found = sorted(_gfile().glob(str(self / pattern)))
        for m in found:
            yield GPath(m)

    def walk(self) -> Iterator[tuple[GPath, list[str], list[str]]]:
        """``tf.io.gfile.walk``, top-down."""
        with _as_oserror(self._url):
            tree = list(_gfile().walk(self._url))
        for top, dirs, files in tree:
            yield GPath(top), [d.rstrip("/") for d in dirs], list(files)

    def rglob(self, pattern: str) -> Iterator[GPath]:
        """Every entry below this folder whose path ends with ``pattern``, as ``Path.rglob`` matches."""
        for top, dirs, files in self.walk():
            for entry in (*dirs, *files):
                p = top / entry
                if PurePosixPath(str(p.relative_to(self))).match(pattern):
                    yield p

    def stat(self) -> UrlStat:
        with _as_oserror(self._url):
            st = _gfile().stat(self._url)
        return UrlStat(int(st.length), st.mtime_nsec / 1e9)

    def open(self, mode: str = "r", encoding: str | None = None) -> IO[Any]:
        """A ``tf.io.gfile.GFile`` (text is UTF-8; errors while reading are TensorFlow's own)."""
        del encoding
        return _gfile().GFile(self._url, mode)  # type: ignore[no-any-return,unused-ignore]

    def read_bytes(self) -> bytes:
        with _as_oserror(self._url), self.open("rb") as f:
            return f.read()  # type: ignore[no-any-return,unused-ignore]

    def read_text(self, encoding: str | None = None) -> str:
        return self.read_bytes().decode(encoding or "utf-8")

    def write_bytes(self, data: bytes) -> None:
        with _as_oserror(self._url), self.open("wb") as f:
            f.write(data)

    def write_text(self, data: str, encoding: str | None = None) -> None:
        self.write_bytes(data.encode(encoding or "utf-8"))

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        with _as_oserror(self._url):
            g = _gfile()
            if g.isdir(self._url):
                if not exist_ok:
                    raise FileExistsError(errno.EEXIST, "exists", self._url)
                return
            if parents:
                g.makedirs(self._url)
            else:
                g.mkdir(self._url)

    def unlink(self, missing_ok: bool = False) -> None:
        with _as_oserror(self._url):
            g = _gfile()
            if missing_ok and not g.exists(self._url):
                return
            g.remove(self._url)

    def replace(self, target: object) -> GPath:
        """Rename over ``target`` (on object stores a copy and a delete: the finished name appears whole)."""
        with _as_oserror(self._url):
            _gfile().rename(self._url, str(target), overwrite=True)
        return GPath(str(target))

    def rename(self, target: object) -> GPath:
        """Rename to ``target``, which must not exist (a folder too where the file system can: TensorFlow's
        GCS file system renames every object under it)."""
        with _as_oserror(self._url):
            _gfile().rename(self._url, str(target), overwrite=False)
        return GPath(str(target))

    def copy_from(self, local: Path) -> None:
        """Put the local file ``local`` here in one write (on an object store, one object appears whole)."""
        with _as_oserror(self._url):
            _gfile().copy(str(local), self._url, overwrite=True)

    @property
    def object_store(self) -> bool:
        """Whether this URL is on an object store (OBJECT_STORES)."""
        return self.scheme in OBJECT_STORES

    def unique_sibling(self, prefix: str = ".", suffix: str = ".tmp") -> GPath:
        """A fresh name next to this one, for a write that is renamed into place."""
        return self.with_name(f"{prefix}{self.name}.{uuid.uuid4().hex[:12]}{suffix}")


AnyPath = Path | GPath
"""A local path or a URL: what every reader of data roots, metadata and converter folders takes."""


def as_path(path: str | Path | GPath) -> AnyPath:
    """``path`` as a :class:`GPath` if it is a URL, else as a local :class:`Path` (``~`` expanded)."""
    if isinstance(path, GPath | Path):
        return path
    return GPath(path) if remote_scheme(path) is not None else Path(path).expanduser()
