"""Policy latency on this machine: ms per `Policy.act` call on one observation (batch 1, jitted, compile
excluded), against the bare jitted network call on arrays already on the device (the same computation
without the policy's checks, normalisation, history and un-normalisation), measured in the same run.

    python bench/bench_policy.py [--algo gc_bc] [--encoder tiny] [--image 64] [--calls 200]

The run directory is written from freshly initialised parameters (no training needed for a latency).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any


def write_run(root: Path, algo: str, encoder: str) -> Path:
    import jax

    from bdv2.fsutil import write_json_atomic
    from bdv2.trainer.agents import make_agent
    from bdv2.trainer.checkpoint_io import example_batch, save_state
    from bdv2.trainer.model import Run, Task
    from bdv2.trainer.settings import Algo, build_settings

    meta = {"action": {"mean": [0.0] * 7, "std": [1.0] * 7}, "proprio": {"mean": [0.0] * 7, "std": [1.0] * 7}}
    keys: dict[str, Any] = {"data_root": str(root), "save_dir": str(root), "encoder": encoder}
    if algo == "gc_ddpm_bc":
        keys.update(obs_horizon=1, act_pred_horizon=1)
    run = Run("bench", Algo(algo), Task("bench", (), str(root / "metadata.json")),
              build_settings(keys, "bench", ""))
    params = make_agent(run).init(jax.random.PRNGKey(0), example_batch(run))
    write_json_atomic(run.workdir / "metadata.json", meta)
    write_json_atomic(run.workdir / "config.json", {**run.to_dict(), "metadata": meta})
    save_state(run, {"params": params, "target_params": params, "rng": jax.random.PRNGKey(0)}, run.workdir, 0)
    return run.workdir


def per_call_ms(fn: Any, calls: int) -> float:
    fn()  # compile
    fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1000


def main() -> None:
    from bdv2.console import quiet_native_logs

    quiet_native_logs()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algo", default="gc_bc", choices=["bc", "gc_bc", "gc_ddpm_bc"])
    ap.add_argument("--encoder", default="tiny")
    ap.add_argument("--image", type=int, default=64)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()

    import jax
    import numpy as np

    from bdv2.trainer.policy import load_policy

    with tempfile.TemporaryDirectory() as tmp:
        policy = load_policy(write_run(Path(tmp), args.algo, args.encoder))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.image, args.image, 3), dtype=np.uint8)
    goal = {"image": rng.integers(0, 256, (args.image, args.image, 3), dtype=np.uint8)}
    act_ms = per_call_ms(lambda: policy.act({"image": image}, goal), args.calls)

    batch_image = image[None, None] if policy.obs_horizon else image[None]
    obs = {"image": jax.device_put(batch_image)}
    goals = None if args.algo == "bc" else {"image": jax.device_put(goal["image"][None])}
    key = jax.random.PRNGKey(0)
    with jax.threefry_partitionable(False):
        bare_ms = per_call_ms(lambda: policy._forward(policy.params, obs, goals, key, True).block_until_ready(),
                              args.calls)
    print(f"{args.algo} {args.encoder} {args.image}px on {jax.devices()[0].platform}: "
          f"act {act_ms:.2f} ms/call, bare jitted network {bare_ms:.2f} ms/call, ratio {act_ms / bare_ms:.2f}")


if __name__ == "__main__":
    main()
