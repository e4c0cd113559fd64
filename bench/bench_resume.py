"""Time from `train_and_evaluate` to the end of the first training step: a fresh run versus a run resumed at step
100,000 (a checkpoint written as the loop writes one: a fresh state with its step set to 100,000), same config,
same data, in one process. Resuming restarts the input streams from (seed, step) (trainer/data.py), so the two
should take about as long; the replay the pipeline used to do (Dataset.skip) is estimated from the pipeline's
rate measured here (a lower bound: the old replay also augmented every skipped transition on the CPU).

    python bench/bench_resume.py [--data TFRECORD_ROOT] [--step 100000]

Without --data it writes the synthetic 128 px trajectories of bench_train.py. gc_bc, tiny encoder, batch 64.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any


def fake_checkpoint(run: Any, workdir: Path, step: int) -> None:
    import numpy as np
    import orbax.checkpoint as ocp

    from bdv2.trainer import data, loop
    from bdv2.trainer.agents import make_agent

    agent, tx = make_agent(run), loop.make_optimizer(run)
    state = loop.create_train_state(agent, tx, next(data.train_iterator(run)), run.settings.seed)
    with ocp.CheckpointManager(workdir.resolve() / "checkpoints",
                               options=ocp.CheckpointManagerOptions(create=True)) as manager:
        manager.save(step, args=ocp.args.StandardSave(state.replace(step=np.int32(step))))
        manager.wait_until_finished()


def time_to_first_step(run: Any, workdir: Path, start: int) -> float:
    """Seconds from the call to the first step's log record (log_interval 1: the step's metrics are fetched)."""
    from bdv2.trainer import loop

    t0, first = time.perf_counter(), []

    def report(step: int, total: int, rate: float) -> None:
        first.append(time.perf_counter() - t0)

    result = loop.train_and_evaluate(run, workdir=workdir, stop_after=start + 1, report=report)
    assert result.steps == start + 1, result
    return first[0]


def main() -> None:
    from bdv2.console import quiet_native_logs

    quiet_native_logs()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--step", type=int, default=100_000)
    args = ap.parse_args()
    from bench_train import write_synthetic

    from bdv2.trainer import config, data

    data.hide_gpus_from_tf()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or write_synthetic(Path(tmp) / "tfrecord")
        exp = config.expand({"global": {"data_root": str(root), "save_dir": tmp, "train_batch_size": 64,
                                        "encoder": "tiny", "hidden_dims": [128, 128], "num_steps": args.step + 5,
                                        "log_interval": 1, "eval_interval": 10**9, "save_interval": 10**9,
                                        "jax_platform_name": "cpu"},
                             "matrix": {"algos": ["gc_bc"], "tasks": ["."]}}, "bench")
        run = exp.runs[0]
        time_to_first_step(run, Path(tmp) / "warm-up", 0)  # the process's one-off start-up costs (imports, TF, XLA)
        fresh = time_to_first_step(run, Path(tmp) / "fresh", 0)
        fake_checkpoint(run, Path(tmp) / "resumed", args.step)
        resumed = time_to_first_step(run, Path(tmp) / "resumed", args.step)
        it = data.train_iterator(run)
        next(it)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 10:
            next(it)
            n += 1
        rate = n / (time.perf_counter() - t0)
    print(f"gc_bc, tiny encoder, batch 64, {root}:")
    print(f"  fresh start, time to the first step:         {fresh:7.1f} s")
    print(f"  resumed at step {args.step:,}, time to the first step: {resumed:7.1f} s ({resumed / fresh:.2f}x fresh)")
    print(f"  replaying {args.step:,} batches instead (the former Dataset.skip) at this pipeline's "
          f"{rate:.1f} batches/s: >= {args.step / rate:,.0f} s")


if __name__ == "__main__":
    main()
