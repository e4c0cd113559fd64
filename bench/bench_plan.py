"""The memory plan against the truth: for three configs (64, 128 and 256 px images; shuffle buffers large
enough to dominate), the host RAM that `bdv2 train --plan` estimates (trainer/budget.py, the plan child
trainer/plan.py, which compiles and runs the step) and the peak resident set (ru_maxrss) of the real training
child (trainer/worker.py) run for a few steps on the same data, and their ratio. Goal: every ratio within
0.75-1.25. The cheaper estimate every launch prints (nothing compiled: it leaves out XLA's compilation and the
runtime) is shown beside it, as its own ratio ("launch").

    python bench/bench_plan.py [--steps 5] [--configs 64:2000,128:3000,256:3000]

Data: synthetic trajectories written by data_tools.schema's writer (bench_train.write_synthetic's recipe) at
each image size, to a temp dir. Tiny encoder, batch 16, CPU. The machine may be shared: the peak RSS does not
depend on the load, the times do (and are not reported here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BATCH = 16
TRAJECTORIES = 24


def write_data(root: Path, side: int) -> Path:
    import tensorflow as tf

    from bdv2.data_tools import schema

    rng = np.random.default_rng(side)
    texture = rng.integers(0, 256, (8, side, side, 3)).astype(np.uint8)
    for split, count in (("train", TRAJECTORIES), ("val", 2)):
        out = root / "kitchen" / "a" / split
        out.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(out / "out.tfrecord")) as w:
            for _ in range(count):
                n = int(rng.integers(25, 45))
                state = np.cumsum(rng.normal(0, 0.01, (n + 1, 7)), 0).astype(np.float32)
                state[:, 6] = np.arange(n + 1) < n // 2
                images = np.stack([texture[t % 8] for t in range(n + 1)])
                actions = np.concatenate([np.diff(state[:, :6], axis=0), state[1:, 6:]], 1)
                w.write(schema.encode_example(schema.make_arrays(images, state, actions, ["x"])))
    stats = {"action": {"mean": [0.0] * 7, "std": [0.01] * 6 + [0.5]},
             "proprio": {"mean": [0.0] * 7, "std": [0.05] * 6 + [0.5]}}
    (root / "metadata.json").write_text(json.dumps(stats))
    return root


def load_run(tmp: Path, data: Path, slots: int, steps: int) -> object:
    import yaml

    from bdv2.trainer import config

    glob = {"data_root": str(data), "save_dir": str(tmp / "runs"), "train_batch_size": BATCH, "val_batch_size": BATCH,
            "num_steps": steps, "eval_interval": 10**6, "save_interval": 10**6, "log_interval": 1,
            "warmup_steps": 1, "encoder": "tiny", "hidden_dims": [32, 32], "shuffle_buffer_size": slots,
            "jax_platform_name": "cpu", "keep_checkpoints": 1}
    path = tmp / "m.yaml"
    path.write_text(yaml.safe_dump({"global": glob, "runs": [{"algo": "gc_bc", "task": "kitchen/a", "name": "r"}]}))
    return config.load(path).runs[0]


PEAK = ("import resource, sys\nfrom bdv2.trainer import worker\nrc = worker.main(sys.argv[1:])\n"
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)\nsys.exit(rc)\n")


def measure(run: object, env: dict[str, str]) -> int:
    """Peak RSS in bytes of the training child (the worker the launcher starts), run to the end."""
    from bdv2.trainer import launch

    launch.prepare_workdir(run, resume=False)  # type: ignore[arg-type]
    out = subprocess.run([sys.executable, "-P", "-c", PEAK, str(run.workdir / launch.RUN_FILE)],  # type: ignore[attr-defined]
                         env=env, capture_output=True, text=True, timeout=1800)
    line = next((x for x in out.stdout.splitlines() if x.startswith("PEAK_RSS_KB")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"the training child failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return int(line.split()[1]) * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--configs", default="64:2000,128:3000,256:3000", help="side:shuffle_buffer_size,...")
    args = ap.parse_args()
    from bdv2.trainer import budget
    from bdv2.trainer.childenv import child_env

    print(f"{'config':>18} {'slot':>9} {'estimate':>9} {'measured':>9} {'ratio':>6} {'launch':>6}")
    ratios = []
    for item in args.configs.split(","):
        side, slots = (int(x) for x in item.split(":"))
        with tempfile.TemporaryDirectory(prefix=f"bench-plan-{side}-") as tmp:
            data = write_data(Path(tmp) / "data", side)
            run = load_run(Path(tmp), data, slots, args.steps)
            env = child_env(run.settings, os.environ, ())  # type: ignore[attr-defined]
            plan = budget.estimate([run], env, full=True)[0]  # type: ignore[list-item]
            quick = budget.estimate([run], env)[0]  # type: ignore[list-item]
            peak = measure(run, env)
        ratio = plan.host_bytes / peak
        ratios.append(ratio)
        print(f"{f'{side} px x {slots} slots':>18} {budget.gb(plan.slot_bytes):>9} {budget.gb(plan.host_bytes):>9} "
              f"{budget.gb(peak):>9} {ratio:6.2f} {quick.host_bytes / peak:6.2f}   "
              f"(interpreter {budget.gb(plan.interpreter_bytes)}, "
              f"shuffle {budget.gb(plan.shuffle_bytes)})", flush=True)
    worst = max(ratios, key=lambda r: abs(r - 1))
    print(f"estimate / measured peak RSS: worst {worst:.2f} ({'within' if abs(worst - 1) <= 0.25 else 'outside'} 25%)")


if __name__ == "__main__":
    main()
