"""Output folders checked before work starts, and storage faults named in one line: a folder that cannot be
written (read-only file system, permissions), a file system without room. Every room uses these (the trainer's
save_dir, the converters' outputs). Stdlib only.

Writability is tried, not inferred from permission bits (root ignores those, a read-only mount or an immutable
folder does not): a temporary entry is created in the folder, or in its nearest existing parent when the folder
does not exist yet, and removed at once.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOW_FREE_BYTES = 16 * 2**20
"""Below this much free space, a write that failed is taken to have failed for want of space."""

_REASONS = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted (an immutable folder?)", errno.ENOSPC: "no space left",
            errno.EDQUOT: "disk quota exceeded"}


def size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


@dataclass(frozen=True)
class StorageProblem:
    """One folder that cannot take the output, in one line, with what to do."""

    folder: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.folder}: {self.problem}; {self.fix}"


def remote_scheme(path: str) -> str | None:
    """The URL scheme of ``path`` (``gs``, ``s3``, ...), or None for a local path."""
    head, sep, _ = str(path).partition("://")
    return head if sep and head.isascii() and head.isalnum() else None


def existing_parent(folder: Path) -> Path:
    """``folder`` itself if it exists, else its nearest existing parent."""
    p = folder.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def reason(error: OSError) -> str:
    """A storage OSError as a few words (its errno's meaning)."""
    return _REASONS.get(error.errno or 0, error.strerror or type(error).__name__)


def check_writable(folder: Path, what: str = "output folder") -> StorageProblem | None:
    """None if an entry can be created in ``folder`` (or where it would be created); else the problem."""
    base = existing_parent(folder)
    if not base.is_dir():
        return StorageProblem(str(folder), f"{base} is not a folder", f"choose another {what}")
    try:
        probe = tempfile.mkdtemp(prefix=".bdv2-write-test-", dir=base)
        os.rmdir(probe)
    except OSError as e:
        where = "" if base == folder.absolute() else f" ({base}, where it would be created)"
        return StorageProblem(str(folder), f"cannot write here{where}: {reason(e)}",
                              f"make it writable (a read-write mount, `chmod u+w`, `chattr -i`) or choose another "
                              f"{what}")
    return None


def free_bytes(folder: Path) -> int:
    """Free bytes for an unprivileged user on the file system that holds (or would hold) ``folder``."""
    return shutil.disk_usage(existing_parent(folder)).free


def check_space(folder: Path, need: int, what: str = "output folder") -> StorageProblem | None:
    """None if the file system of ``folder`` has ``need`` bytes free; else the problem, sizes named."""
    free = free_bytes(folder)
    if free >= need:
        return None
    return StorageProblem(str(folder), f"{size(free)} free, about {size(need)} needed",
                          f"free some space there, or choose another {what} on a larger file system")


def is_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` is (almost) full: the likely cause of a write that just failed."""
    try:
        return free_bytes(folder) < LOW_FREE_BYTES
    except OSError:
        return False


def full_disk_problem(folder: Path, what: str = "output folder") -> StorageProblem:
    """The one line for a run or conversion stopped by a full file system (the sizes are those of now: the
    unfinished file may already be removed)."""
    try:
        usage = shutil.disk_usage(existing_parent(folder))
        sizes = f" ({size(usage.free)} free of {size(usage.total)} now)"
    except OSError:
        sizes = ""
    return StorageProblem(str(folder), f"no space left on its file system{sizes}",
                          f"free space there or choose another {what} on a larger file system, then re-run the "
                          "same command")


def says_full(error: BaseException) -> bool:
    """Whether ``error`` reports a full file system or quota: an OSError's errno, or the text TensorFlow's and
    tensorstore's writers carry (they raise their own error types)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(error) or "Disk quota exceeded" in str(error)
