"""Why a run's child process ended without finishing, named: bdv2's own error (the child's error.json), a
signal (its name, its usual causes, and the step the next launch resumes from), or an exit code whose log
the doctor reads (launch.diagnose_failure).

Stdlib only. The child (worker.py) writes ERROR_FILE with `write_error`; the launcher reads it with
`read_error` (the launcher removes an earlier launch's record before starting the child).
"""

from __future__ import annotations

import enum
import json
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bdv2 import storage
from bdv2.fsutil import write_json_atomic
from bdv2.paths import AnyPath

ERROR_FILE = "error.json"
CHECKPOINT_DIR = "checkpoints"


class FailureKind(enum.Enum):
    BDV2_ERROR = "bdv2 error"
    """The child raised one of bdv2's error classes (ConfigError, DataError, ...): its message and fix."""
    SIGNAL = "signal"
    """The child was killed by a signal (Popen.returncode is -signum)."""
    STORAGE = "storage"
    """The run folder's file system is full (bdv2.storage): the child could not even write its error."""


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    title: str
    evidence: tuple[str, ...] = ()
    fix: str = ""


def write_error(workdir: AnyPath, error: BaseException, step: int | None = None) -> None:
    """The child's record of one of bdv2's errors, written atomically (bdv2.fsutil) before it exits 1."""
    text = str(error)
    message, _, fix_text = text.partition("\n  fix: ")
    fix = getattr(error, "fix", "") or fix_text
    write_json_atomic(workdir / ERROR_FILE, {"type": type(error).__name__, "module": type(error).__module__,
                                             "message": message, "fix": fix, "step": step})


def is_bdv2_error(error: BaseException) -> bool:
    """One of bdv2's own error classes (every room's errors.py), whose message already names cause and fix."""
    return type(error).__module__.startswith("bdv2.") and isinstance(error, Exception)


def read_error(workdir: AnyPath) -> Failure | None:
    """The child's error record, if it wrote one."""
    try:
        record: dict[str, Any] = json.loads((workdir / ERROR_FILE).read_text())
    except (OSError, ValueError):
        return None
    return Failure(FailureKind.BDV2_ERROR, f"{record.get('type', 'error')}: {record.get('message', '')}",
                   fix=str(record.get("fix") or ""))


def last_checkpoint(workdir: AnyPath) -> int | None:
    """The step of the newest finished orbax checkpoint (a directory named by its step; orbax renames a
    checkpoint's temporary directory to that name only once it is complete)."""
    steps = [int(p.name) for p in (workdir / CHECKPOINT_DIR).glob("*") if p.is_dir() and p.name.isdigit()]
    return max(steps) if steps else None


def _causes(sig: signal.Signals) -> str:
    """The usual causes of each signal for a training process (https://man7.org/linux/man-pages/man7/signal.7.html)."""
    match sig:
        case signal.SIGKILL:
            return ("usually the kernel's out-of-memory killer (check `dmesg -T | grep -i -E 'out of memory|killed "
                    "process'` and the run's memory: smaller batches, shuffle_buffer_size) or the scheduler's hard "
                    "kill after a time limit or preemption grace period")
        case signal.SIGTERM | signal.SIGUSR1 | signal.SIGUSR2:
            return ("the scheduler preempted the job or its time limit was reached (Slurm sends SIGTERM, or the "
                    "signal of --signal, before its hard kill), or someone ran `kill`")
        case signal.SIGINT:
            return "interrupted (Ctrl-C, or SIGINT sent to the process group)"
        case signal.SIGHUP:
            return "its terminal or ssh session closed (run under nohup, tmux or the scheduler)"
        case signal.SIGSEGV | signal.SIGBUS | signal.SIGILL:
            return "a crash in native code (jaxlib, TensorFlow, CUDA libraries); the log's last lines show where"
        case signal.SIGABRT:
            return "native code aborted (a failed check in XLA or TensorFlow); the log's last lines say which"
        case _:
            return signal.strsignal(sig) or "no usual cause known"


def signal_failure(returncode: int, workdir: AnyPath, config_file: str) -> Failure | None:
    """The failure of a child that ``returncode`` (-signum, as subprocess reports it) says died by a signal."""
    if returncode >= 0:
        return None
    try:
        sig = signal.Signals(-returncode)
        name = sig.name
    except ValueError:
        return Failure(FailureKind.SIGNAL, f"killed by signal {-returncode}")
    step = last_checkpoint(workdir)
    resume = (f"the next launch of the same config resumes it from step {step} (its last checkpoint, "
              f"{workdir / CHECKPOINT_DIR / str(step)})" if step is not None else
              "it had no checkpoint yet: the next launch of the same config starts it from step 0")
    return Failure(FailureKind.SIGNAL, f"killed by {name} (signal {-returncode})",
                   (f"cause: {_causes(sig)}", resume),
                   f"bdv2 train --config {config_file}" if config_file else "")


def storage_failure(returncode: int, workdir: AnyPath, config_file: str) -> Failure | None:
    """A child that failed while its run folder's file system is full failed for want of space (its log and
    error record may be cut short by the same full disk)."""
    if returncode == 0 or not isinstance(workdir, Path) or not storage.is_full(workdir):  # a URL: no such figure
        return None
    problem = storage.full_disk_problem(workdir, "save_dir")
    step = last_checkpoint(workdir)
    resume = (f"its last complete checkpoint is step {step}; the next launch resumes from it" if step is not None
              else "it had no complete checkpoint yet")
    return Failure(FailureKind.STORAGE, f"{workdir}: {problem.problem}", (resume,),
                   problem.fix + (f": bdv2 train --config {config_file}" if config_file else ""))
