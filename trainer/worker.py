"""The child process of one run: `python -m bdv2.trainer.worker <workdir>/run.json`.

It trains, prints one progress line per log step, and exits 0 (finished), 1 (failed; the message or the
traceback is the last thing in the log, where the launcher's diagnosis reads it) or process.PREEMPTED_EXIT
(a stop signal arrived; the current step was saved). One of bdv2's own errors (ConfigError, DataError, ...) is
also written to <workdir>/error.json (failure.write_error), so the launcher shows it as itself, with its fix,
rather than guessing from the log.

Before training, `main` sets up the process (process.py): TensorFlow kept off the GPU, jax.distributed where
configured, the stop-signal handlers, the tie to the launcher (the child stops and saves when its launcher
dies), the run folder's lock (runlock.py; a child of `bdv2 train` works under its launcher's lock) and the
persistent compilation cache. loop.train_and_evaluate is then a plain function (flax's examples/imagenet
splits main.py and train.py the same way).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from pathlib import Path

from bdv2.paths import AnyPath, as_path


def _process_index(environ: dict[str, str] | os._Environ[str]) -> int:
    """This worker's rank among the hosts, from the environment (jax.distributed may not be up yet)."""
    for key in ("BDV2_PROCESS_ID", "SLURM_PROCID"):
        if environ.get(key, "").isdigit():
            return int(environ[key])
    return 0


def storage_error(error: OSError, workdir: AnyPath) -> BaseException:
    """A read-only, forbidden or full output folder as one StorageError line; any other OSError unchanged."""
    from bdv2 import storage

    from .errors import StorageError

    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        where = Path(error.filename) if error.filename else workdir
        return StorageError(f"{where}: cannot write: {storage.reason(error)}; make the run folder writable or set "
                            f"save_dir to a writable folder, then re-run the same command")
    if storage.says_full(error) and isinstance(workdir, Path):
        return StorageError(str(storage.full_disk_problem(workdir, "save_dir")))
    return error


def main(argv: list[str]) -> int:
    from . import process, runlock
    from .data import hide_gpus_from_tf
    from .failure import is_bdv2_error, write_error
    from .hosts import maybe_initialize_distributed
    from .loop import train_and_evaluate
    from .model import Run

    run = Run.from_dict(json.loads(as_path(argv[0]).read_text()))
    start = time.perf_counter()
    process.die_with_parent()
    lock = None
    try:
        hide_gpus_from_tf()  # before anything else touches TensorFlow: JAX keeps the GPU memory
        try:
            if _process_index(os.environ) == 0:  # one owner per run folder; the other hosts work under host 0's
                parent = os.environ.get(process.PARENT_ENV, "")
                lock = runlock.acquire(run.workdir, parent=int(parent) if parent.isdigit() else None)
                if lock.note:
                    print(f"[{run.name}] {lock.note}", flush=True)
            maybe_initialize_distributed()
            import jax

            stop = process.install_stop_handlers(distributed=jax.distributed.is_initialized())
            cache = process.enable_compilation_cache(run.settings.save_dir)

            def report(step: int, total: int, rate: float) -> None:
                print(f"[{run.name}] step {step}/{total}  {rate:.2f} steps/s  {time.perf_counter() - start:.0f} s",
                      flush=True)

            result = train_and_evaluate(run, run.workdir, report=report, stop=stop)
        except OSError as e:
            named = storage_error(e, run.workdir)
            if named is e:
                raise
            raise named from e
    except Exception as e:
        if not is_bdv2_error(e):
            raise  # a traceback in the log, for the doctor's signatures
        with contextlib.suppress(OSError):  # the folder that failed may be the run's own: the line below names it
            write_error(run.workdir, e)
        print(f"bdv2 train: {run.name} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        if lock is not None:
            lock.release()
    print(f"[{run.name}] {result.status} after {result.steps} steps, train loss {result.train_loss}, "
          f"val loss {result.val_loss}" + "".join(f"; {n}" for n in result.notes if n.startswith("preempted")),
          flush=True)
    print(f"[{run.name}] {cache.describe()}", flush=True)
    return process.exit_code(result.status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
