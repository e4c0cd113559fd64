"""Run by test_topology.py in a subprocess whose XLA_FLAGS give it a number of simulated CPU devices.

    topology_probe.py make ROOT      train the tiny run ROOT/m.yaml here; write ROOT/export_src, a
                                     resnetv1-18-bridge run whose checkpoint is saved from these devices
    topology_probe.py use ROOT OUT   use ROOT's runs here: resume, bdv2 eval, load_policy, init_from,
                                     bdv2 checkpoint export; one JSON line of findings on stdout

Both print the device count they ran with, so the test can check the subprocess saw what it asked for.
"""

from __future__ import annotations

import json
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import jax
import numpy as np


def _run(yaml: Path) -> Any:
    from bdv2.trainer import config

    return config.load(yaml).runs[0]


def make(root: Path) -> dict[str, Any]:
    """The tiny run trained here, and a resnetv1-18-bridge run (the encoder export accepts) whose state is
    placed on every device as the loop places it, then saved: untrained, as export does not run the model."""
    import dataclasses

    import orbax.checkpoint as ocp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from bdv2.trainer import checkpoint_io, loop

    run = _run(root / "m.yaml")
    result = loop.train_and_evaluate(run)
    big = dataclasses.replace(run, name="export_src",
                              settings=dataclasses.replace(run.settings, encoder="resnetv1-18-bridge"))
    out = big.workdir
    out.mkdir(parents=True)
    snapshot = json.loads((run.workdir / loop.CONFIG_SNAPSHOT).read_text())
    (out / loop.CONFIG_SNAPSHOT).write_text(json.dumps({**snapshot, **big.to_dict()}))
    params = jax.tree.map(lambda x: np.random.default_rng(0).normal(size=x.shape).astype(x.dtype),
                          checkpoint_io.abstract_params(big))
    tx = loop.make_optimizer(big)
    state = loop.TrainState(step=np.int32(3), params=params, target_params=params, opt_state=tx.init(params),
                            rng=jax.random.PRNGKey(0))
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    state = jax.device_put(state, NamedSharding(mesh, PartitionSpec()))
    with ocp.CheckpointManager(out / "checkpoints", options=ocp.CheckpointManagerOptions(create=True)) as m:
        m.save(3, args=ocp.args.StandardSave(state))
        m.wait_until_finished()
    leaf = jax.tree.leaves(state.params)[0]
    return {"devices": jax.device_count(), "steps": result.steps, "sharded_over": len(leaf.sharding.device_set)}


def _attempt(out: dict[str, Any], key: str, fn: Any) -> None:
    try:
        out[key] = fn()
    except Exception as e:  # reported to the test, which names the step that failed
        out[key] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-1500:]}


def use(root: Path, work: Path) -> dict[str, Any]:
    from click.testing import CliRunner

    from bdv2.cli import main
    from bdv2.trainer import ckpt_tree, loop, policy

    run = _run(root / "m.yaml")
    out: dict[str, Any] = {"devices": jax.device_count()}

    def resume() -> dict[str, Any]:
        copy = _run(root / "resume.yaml")  # the same run with save_dir under work and two more steps
        shutil.copytree(run.workdir, copy.workdir)
        before = ckpt_tree.restore_raw(ckpt_tree.locate(copy.workdir)[1])
        res = loop.train_and_evaluate(copy)
        return {"steps": res.steps, "notes": res.notes, "saved_step": int(before["step"])}

    def evaluate() -> dict[str, Any]:
        res = CliRunner().invoke(main, ["eval", str(run.workdir), "--data", str(root / "tf"), "--json",
                                        "--out", str(work / "eval"), "--plot-trajectories", "0"])
        return {"exit_code": res.exit_code, "output": res.output[-1500:]}

    def act() -> dict[str, Any]:
        pol = policy.load_policy(run.workdir)
        image = np.zeros((16, 16, 3), np.uint8)
        action = pol.act({"image": image, "proprio": np.zeros(7, np.float32)}, goal={"image": image})
        params = ckpt_tree.restore_raw(ckpt_tree.locate(run.workdir)[1])["target_params"]
        return {"shape": list(action.shape), "finite": bool(np.isfinite(action).all()),
                "param_sum": float(sum(np.sum(np.asarray(x, np.float64)) for x in jax.tree.leaves(params)))}

    def init_from() -> dict[str, Any]:
        tuned = _run(root / "init_from.yaml")
        res = loop.train_and_evaluate(tuned)
        return {"steps": res.steps, "status": str(res.status)}

    def export() -> dict[str, Any]:
        res = CliRunner().invoke(main, ["checkpoint", "export", "--to", "jaxrl_m", str(root / "runs" / "export_src"),
                                        "--out", str(work / "exported")])
        files = sorted(p.name for p in (work / "exported").glob("*")) if (work / "exported").is_dir() else []
        return {"exit_code": res.exit_code, "output": res.output[-1500:], "files": files}

    for key, fn in (("resume", resume), ("eval", evaluate), ("policy", act), ("init_from", init_from),
                    ("export", export)):
        _attempt(out, key, fn)
    return out


if __name__ == "__main__":
    mode, root = sys.argv[1], Path(sys.argv[2])
    found = make(root) if mode == "make" else use(root, Path(sys.argv[3]))
    print("PROBE " + json.dumps(found), flush=True)
