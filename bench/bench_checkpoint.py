"""How long a checkpoint save stalls training: orbax's synchronous save versus its asynchronous one (what the
loop uses), on 1 and on 8 simulated CPU devices.

    python bench/bench_checkpoint.py [--mb 40] [--steps 24] [--every 4]

For each device count a subprocess (XLA_FLAGS=--xla_force_host_platform_device_count=N) builds a state the
shape of a TrainState (params, target params, Adam's two moments: 4 x MB of float32 leaves), replicated over
every device as the loop places it, and runs a jitted step that updates every leaf (donating the old state,
as the loop does) plus a fixed amount of matrix work. It times the same number of steps three ways: no
saves, a synchronous save every EVERY steps, an asynchronous one; the last save is waited for, as the end of
training (and a preemption) waits for it. Figures per save:

    blocking  the time save() takes to return (the step cannot start before it)
    stall     (loop time with saves - loop time without) / saves: what a save costs the run in all

The async/sync ratio of each is printed per device count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def measure(mb: int, steps: int, every: int) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import orbax.checkpoint as ocp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    replicated = NamedSharding(Mesh(np.array(jax.devices()), ("batch",)), PartitionSpec())
    leaves = 40
    size = mb * 2**20 // 4 // leaves

    def fresh() -> Any:
        tree = {name: {f"w{i}": jnp.full((size,), i, jnp.float32) for i in range(leaves)}
                for name in ("params", "target_params", "mu", "nu")}
        return jax.device_put({**tree, "work": jnp.eye(384), "step": jnp.zeros((), jnp.int32)}, replicated)

    def update(state: Any) -> Any:
        out = jax.tree.map(lambda x: x * 0.999 + 0.001, {k: v for k, v in state.items() if k not in ("work", "step")})
        work = state["work"]
        for _ in range(8):  # a fixed amount of compute, so there is something for a background save to overlap
            work = jnp.tanh(work @ work)
        return {**out, "work": work, "step": state["step"] + 1}

    step = jax.jit(update, donate_argnums=0)  # the old state's buffers are reused, as in the loop

    def loop(mode: str, root: Path) -> tuple[float, list[float]]:
        state = fresh()
        state = step(state)  # compiled before the clock starts
        jax.block_until_ready(state)
        blocking: list[float] = []
        manager = None
        if mode != "none":
            manager = ocp.CheckpointManager(root / mode, options=ocp.CheckpointManagerOptions(
                create=True, max_to_keep=2, enable_async_checkpointing=mode == "async"))
        t0 = time.perf_counter()
        for i in range(1, steps + 1):
            state = step(state)
            if manager is not None and i % every == 0:
                t = time.perf_counter()
                manager.save(i, args=ocp.args.StandardSave(state))
                blocking.append(time.perf_counter() - t)
        jax.block_until_ready(state)
        if manager is not None:
            manager.wait_until_finished()
            manager.close()
        return time.perf_counter() - t0, blocking

    with tempfile.TemporaryDirectory() as tmp:
        base, _ = loop("none", Path(tmp))
        sync, sync_block = loop("sync", Path(tmp))
        asy, async_block = loop("async", Path(tmp))
        base2, _ = loop("none", Path(tmp))  # the baseline again: the machine may have changed meanwhile
    base = min(base, base2)
    saves = steps // every
    return {"devices": jax.device_count(), "step_s": base / steps, "saves": saves,
            "sync_blocking_s": float(np.median(sync_block)), "async_blocking_s": float(np.median(async_block)),
            "sync_stall_s": (sync - base) / saves, "async_stall_s": (asy - base) / saves}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=40, help="MB of parameters (the state holds 4 times this)")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--every", type=int, default=4, help="save every this many steps")
    ap.add_argument("--devices", type=int, default=0, help=argparse.SUPPRESS)  # the subprocess's own run
    args = ap.parse_args()
    if args.devices:
        print("RESULT " + json.dumps(measure(args.mb, args.steps, args.every)), flush=True)
        return
    print(f"state: 4 x {args.mb} MB float32, {args.steps} steps, a save every {args.every}; CPU, simulated devices")
    print(f"{'devices':>7} {'step':>8} {'blocking sync':>14} {'async':>8} {'ratio':>7} "
          f"{'stall sync':>11} {'async':>8} {'ratio':>7}")
    for n in (1, 8):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2",
               "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
        out = subprocess.run([sys.executable, __file__, "--devices", str(n), "--mb", str(args.mb), "--steps",
                              str(args.steps), "--every", str(args.every)], env=env, capture_output=True,
                             text=True, check=False)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"the {n}-device run failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
        r = json.loads(line[len("RESULT "):])
        print(f"{r['devices']:>7} {r['step_s']:>7.3f}s {r['sync_blocking_s']:>13.3f}s {r['async_blocking_s']:>7.3f}s "
              f"{r['async_blocking_s'] / r['sync_blocking_s']:>7.2f} {r['sync_stall_s']:>10.3f}s "
              f"{r['async_stall_s']:>7.3f}s {r['async_stall_s'] / max(r['sync_stall_s'], 1e-9):>7.2f}")


if __name__ == "__main__":
    main()
