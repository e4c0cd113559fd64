"""The child process of one run: `python -m bdv2.trainer.worker <workdir>/run.json`.

`main` sets up the process (TensorFlow kept off the GPU, jax.distributed joined when the environment asks
for it), then calls loop.train_and_evaluate, a plain function (flax's examples/imagenet splits main.py and
train.py the same way).

It trains, prints one progress line per log step, and exits 0 (finished) or 1 (failed; the message or the
traceback is the last thing in the log, where the launcher's diagnosis reads it). One of bdv2's own errors
(ConfigError, DataError, ...) is also written to <workdir>/error.json (failure.write_error), so the launcher
shows it as itself, with its fix, rather than guessing from the log.
"""

from __future__ import annotations

import contextlib
import errno
import json
import sys
import time
from pathlib import Path


def storage_error(error: OSError, workdir: Path) -> BaseException:
    """A read-only, forbidden or full output folder as one StorageError line; any other OSError unchanged."""
    from bdv2 import storage

    from .errors import StorageError

    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        where = Path(error.filename) if error.filename else workdir
        return StorageError(f"{where}: cannot write: {storage.reason(error)}; make the run folder writable or set "
                            f"save_dir to a writable folder, then re-run the same command")
    if storage.says_full(error):
        return StorageError(str(storage.full_disk_problem(workdir, "save_dir")))
    return error


def main(argv: list[str]) -> int:
    from .data import hide_gpus_from_tf
    from .failure import is_bdv2_error, write_error
    from .hosts import maybe_initialize_distributed
    from .loop import train_and_evaluate
    from .model import Run

    run = Run.from_dict(json.loads(Path(argv[0]).read_text()))
    start = time.perf_counter()

    def report(step: int, total: int, rate: float) -> None:
        print(f"[{run.name}] step {step}/{total}  {rate:.2f} steps/s  {time.perf_counter() - start:.0f} s",
              flush=True)

    try:
        hide_gpus_from_tf()  # before anything else touches TensorFlow: JAX keeps the GPU memory
        maybe_initialize_distributed()  # SLURM or BDV2_* variables: one of several processes
        try:
            result = train_and_evaluate(run, run.workdir, report=report)
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
    print(f"[{run.name}] {result.status} after {result.steps} steps, train loss {result.train_loss}, "
          f"val loss {result.val_loss}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
