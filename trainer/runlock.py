"""One owner per run folder: ``<workdir>/owner.lock`` names the host and process that trains the run.

    acquire(workdir)      -> Lock            the lock, created atomically (O_EXCL); RunLockedError when another
                                             live process holds it; a stale lock is taken over (Lock.note says so)
    Lock.release()                           removes the file if it is still ours

`bdv2 train` takes the lock of every run it will train before it starts the first one, so a second launch of
the same config is refused at once, naming the owner; its children train under the launcher's lock (their
parent's pid is in it). A worker started without the launcher (srun, one per host) takes the lock itself on
process 0.

A lock is stale when its host is this host and its process is gone: no such pid, a zombie, or a pid reused by
a process that started later than the one recorded (Linux's /proc start time, when there is one), or when it
was taken by an earlier start of this same Slurm job (same SLURM_JOB_ID, fewer SLURM_RESTART_COUNT): a
requeued job runs again, maybe on another node, after its first start was killed, and a job never runs twice
at once. Any other lock of another host cannot be checked from here; the message says how to remove it by
hand.

A run folder on an object store (``gs://...``) has no exclusive create: there the lock is the object
``<workdir>/owner.lock`` (the same record, one put), created only while this machine holds a local lock file
keyed by the URL (bdv2.paths.local_shadow), so two launches on one machine never both take it. Two machines
that start the same remote run within the moment between the existence check and the put can both take it:
nothing in ``tf.io.gfile`` offers a create-if-absent precondition. Stdlib only, besides bdv2.paths.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bdv2.paths import AnyPath, GPath, local_shadow

from .errors import TrainerError

LOCK_FILE = "owner.lock"


class RunLockedError(TrainerError):
    """Another process owns the run folder; the message names it and what to do."""


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: str
    """When the lock was taken (UTC, ISO 8601)."""
    proc_start: str = ""
    """The process's start time in clock ticks after boot (/proc/<pid>/stat field 22), to tell a reused pid."""
    slurm_job: str = ""
    """SLURM_JOB_ID of the process's job ("" outside Slurm; an array task has its own)."""
    slurm_restart: int = 0
    """SLURM_RESTART_COUNT: how many times that job had been requeued when the lock was taken."""

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.started}"

    def requeued_by(self, other: Owner) -> bool:
        """Whether ``other`` is a later start of the same Slurm job as this owner (which is then gone)."""
        return bool(self.slurm_job) and self.slurm_job == other.slurm_job and self.slurm_restart < other.slurm_restart


def _proc_start(pid: int) -> str:
    """The start time of ``pid`` from /proc (Linux), "" where there is none; "Z" for a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()  # the command name (field 2) may hold spaces and brackets
    return "Z" if fields[0] in ("Z", "X") else fields[19]


def me(pid: int | None = None) -> Owner:
    pid = os.getpid() if pid is None else pid
    restart = os.environ.get("SLURM_RESTART_COUNT", "")
    return Owner(socket.gethostname(), pid, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), _proc_start(pid),
                 os.environ.get("SLURM_JOB_ID", ""), int(restart) if restart.isdigit() else 0)


def alive(owner: Owner) -> bool:
    """Whether ``owner``'s process still runs; True for another host (it cannot be checked from here)."""
    if owner.host != socket.gethostname():
        return True
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    now = _proc_start(owner.pid)
    if now == "Z":
        return False
    return not (owner.proc_start and now and now != owner.proc_start)


def read_owner(workdir: AnyPath) -> Owner | None:
    """The recorded owner of ``workdir``; None when there is no lock (or an unreadable one, see acquire)."""
    try:
        record = json.loads((workdir / LOCK_FILE).read_text())
        return Owner(str(record["host"]), int(record["pid"]), str(record.get("started", "")),
                     str(record.get("proc_start", "")), str(record.get("slurm_job", "")),
                     int(record.get("slurm_restart", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def _this_machine(url: GPath) -> Iterator[None]:
    """Hold the local lock file of the remote lock object ``url``: one taker at a time on this machine."""
    local = local_shadow(url.parent)
    local.mkdir(parents=True, exist_ok=True)
    with open(local / f"{LOCK_FILE}.mutex", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _create(path: AnyPath, owner: Owner) -> bool:
    """Write ``owner`` to ``path`` if there is no such file yet (False if there is): O_EXCL on a local file
    system; an existence check and one put under this machine's lock on a remote one."""
    text = json.dumps(asdict(owner)) + "\n"
    if isinstance(path, GPath):
        with _this_machine(path):
            if path.exists():
                return False
            path.write_text(text)
        return True
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True


@dataclass
class Lock:
    path: AnyPath
    owner: Owner
    note: str = ""
    """Set when a stale lock was taken over: whose it was."""
    held: bool = True
    """False for a lock that belongs to the parent (a launcher's child trains under its lock)."""

    def release(self) -> None:
        """Remove the lock file if it still names this owner (never someone else's)."""
        if self.held and read_owner(self.path.parent) == self.owner:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check(workdir: AnyPath) -> None:
    """Refuse, as `acquire` would, a folder that another live process owns; takes and creates nothing (a
    launch calls it before its checks, so a second launch is refused before it spends time on them).

    Raises:
        RunLockedError: naming the owner.
    """
    held = read_owner(workdir)
    if held is not None and held.pid != os.getpid() and not held.requeued_by(me()) and alive(held):
        raise _locked(workdir, held)


def _locked(workdir: AnyPath, held: Owner) -> RunLockedError:
    path = workdir / LOCK_FILE
    where = ("stop it there first" if held.host == socket.gethostname() else
             f"if nothing on {held.host} trains it any more, delete {path}")
    return RunLockedError(f"{workdir}: already being trained by {held.describe()} ({path}); a second launch would "
                          f"write the same checkpoints and metrics: {where}, or give this launch another save_dir or "
                          "run name")


def acquire(workdir: AnyPath, pid: int | None = None, parent: int | None = None) -> Lock:
    """Take the lock of ``workdir`` (created if missing) for ``pid`` (default: this process).

    Args:
        parent: a pid whose lock counts as ours (the launcher of this worker): returned with held=False.

    Raises:
        RunLockedError: another live process owns the folder (named), or a lock of another host.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / LOCK_FILE
    owner, note = me(pid), ""
    for _ in range(3):  # a race with another taker: it wins, we read its lock next time round
        if not _create(path, owner):
            held = read_owner(workdir)
            if held is None and not path.exists():  # released meanwhile
                continue
            if held is None:  # unreadable: a taker between create and write, or a torn file; look again
                time.sleep(0.2)
                held = read_owner(workdir)
                if held is None:
                    note = f"replaced an unreadable lock file {path}"
                    path.unlink(missing_ok=True)
                    continue
            if held.host == owner.host and held.pid in (owner.pid, parent):
                return Lock(path, held, held=held.pid == owner.pid)
            if held.requeued_by(owner):
                note = (f"took over the lock of {held.describe()}: an earlier start of Slurm job {held.slurm_job}, "
                        "which was requeued")
            elif alive(held):
                raise _locked(workdir, held) from None
            else:
                note = f"took over the lock of {held.describe()}: that process is gone"
            path.unlink(missing_ok=True)
            continue
        return Lock(path, owner, note)
    raise RunLockedError(f"{path}: could not take the lock (another process keeps re-creating it)")
