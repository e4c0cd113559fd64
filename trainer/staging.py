"""The local side of a run folder on remote storage (``save_dir: gs://...``).

Files that grow line by line (the process's log, metrics.jsonl) cannot be appended to on an object store: they
are written to a local copy, ``bdv2.paths.local_shadow(<workdir>)/<name>``, and put whole into the run folder
at each checkpoint and when the process ends (one put: the remote copy is always a whole, if older, file). For
a local run folder the local copy is the file itself and `upload` does nothing.

    local_file(workdir, name)   -> Path    where to append
    download(workdir, name)                the remote file into the local copy (a start on another machine, a
                                           resume after the remote file was rewritten)
    upload(workdir, name)                  the local copy into the run folder
"""

from __future__ import annotations

import os
from pathlib import Path

from bdv2.paths import AnyPath, GPath, local_shadow

LOG_FILE = "train.log"
"""The process's own output, in the run folder."""

LOG_ENV = "BDV2_RUN_LOG"
"""Set by the launcher for its child when the run folder is remote: the local log the child's output goes to,
which the child puts into the run folder at each checkpoint."""


def local_file(workdir: AnyPath, name: str) -> Path:
    """Where the file ``name`` of the run folder is appended to on this machine."""
    if isinstance(workdir, GPath):
        return local_shadow(workdir) / name
    return workdir / name


def download(workdir: AnyPath, name: str, longer_only: bool = False) -> Path:
    """The local copy of ``name``, replaced by the run folder's copy where there is one (remote folders only).

    Args:
        longer_only: replace it only when the remote copy is longer (a log: the local copy may hold a tail
            that a killed process never put).
    """
    local = local_file(workdir, name)
    if isinstance(workdir, GPath):
        local.parent.mkdir(parents=True, exist_ok=True)
        remote = workdir / name
        if remote.exists():
            if longer_only and local.is_file() and local.stat().st_size >= remote.stat().st_size:
                return local
            tmp = local.with_name(f".{name}.{os.getpid()}.tmp")
            tmp.write_bytes(remote.read_bytes())
            tmp.replace(local)
        elif not longer_only:
            local.unlink(missing_ok=True)
    return local


def upload(workdir: AnyPath, name: str) -> None:
    """Put the local copy of ``name`` into the remote run folder (nothing for a local folder or a missing file)."""
    local = local_file(workdir, name)
    if isinstance(workdir, GPath) and local.is_file():
        from bdv2.fsutil import write_atomic

        write_atomic(workdir / name, local.read_bytes())
