"""Checkpoints of the original BridgeData V2 code (jaxrl_m) in and out of bdv2 run directories.

    import_jaxrl_m(CKPT, CONFIG_JSON, OUT)   an original checkpoint -> a bdv2 run directory (ckpt_tree.py)
    export_jaxrl_m(RUN, OUT)                 a bdv2 run directory -> OUT/checkpoint_<step> + OUT/config.json

The original writes checkpoints with flax.training.checkpoints.save_checkpoint
(https://github.com/rail-berkeley/bridge_data_v2/blob/main/experiments/train.py): a legacy msgpack file
``checkpoint_<step>`` or, with flax's orbax switch on (flax >= 0.7's default), a directory
``checkpoint_<step>/`` whose ``checkpoint`` file is the same msgpack (orbax aggregates every leaf there) or,
for orbax's per-array layouts, what orbax.checkpoint's PyTreeCheckpointer restores without a target.
The export writes the legacy msgpack file, which the original's restore_checkpoint reads onto the agent
experiments/eval.py builds from the config.

Parameter names and refusals: jaxrl_m_map.py. gc_bc/bc/lc_bc keep ``params`` (their target_params are the
never-updated initial values); gc_ddpm_bc keeps both, sampling with the EMA ``target_params``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bdv2.fsutil import write_atomic, write_json_atomic

from . import ckpt_tree, jaxrl_m_map
from .ckpt_tree import CheckpointError, flatten, unflatten
from .errors import ConfigError
from .settings import Algo

JAXRL_M = "jaxrl_m"
METADATA_FILE = "metadata.json"


def read_jaxrl_m_checkpoint(path: Path) -> dict[str, Any]:
    """The state dict flax saved: {"state": {"step", "params", "target_params", "opt_states", "rng"}}."""
    from flax import serialization

    path = path.expanduser()
    file = path / "checkpoint" if path.is_dir() else path
    if not path.exists():
        raise CheckpointError(f"{path}: not found; give the checkpoint_<step> file or directory the original's "
                              "train.py wrote")
    tree: Any = None
    if file.is_file():
        try:
            tree = serialization.msgpack_restore(file.read_bytes())
        except Exception:  # not msgpack: an orbax layout with per-array files; orbax below
            tree = None
        if _has_placeholders(tree):  # orbax's per-array layout: that file only holds the tree's structure
            tree = None
    if not (isinstance(tree, dict) and "state" in tree) and path.is_dir():
        import orbax.checkpoint as ocp

        try:
            tree = ocp.PyTreeCheckpointer().restore(path.resolve())
        except Exception as e:  # orbax raises many types for a foreign directory
            raise CheckpointError(f"{path}: neither flax msgpack nor an orbax checkpoint orbax can read "
                                  f"({type(e).__name__}: {e})") from e
    if not (isinstance(tree, dict) and isinstance(tree.get("state"), dict) and "params" in tree["state"]):
        raise CheckpointError(f"{path}: not an agent checkpoint of the original code (no state/params inside)")
    return tree


def _has_placeholders(tree: Any) -> bool:
    if isinstance(tree, Mapping):
        return any(_has_placeholders(v) for v in tree.values())
    return isinstance(tree, str) and tree.startswith("PLACEHOLDER://")


def _actor(params: Mapping[str, Any], path: Path) -> dict[str, Any]:
    if jaxrl_m_map.ROOT not in params:
        raise CheckpointError(f"{path}: the parameters have no {jaxrl_m_map.ROOT!r} (found {sorted(params)}); "
                              "only the bc, gc_bc, lc_bc and gc_ddpm_bc agents can be imported")
    return flatten(params[jaxrl_m_map.ROOT])


def _check(expected: Mapping[str, Any], got: Mapping[str, Any], what: str) -> None:
    diff = ckpt_tree.first_difference(expected, got)
    if diff is not None:
        raise CheckpointError(f"{what}: the parameter trees differ at {diff}")


def read_config(file: Path) -> dict[str, Any]:
    try:
        config = json.loads(file.expanduser().read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(str(file), "", f"cannot read the config JSON ({type(e).__name__}: {e})") from e
    if not isinstance(config, dict):
        raise ConfigError(str(file), "", "expected a JSON object (the run config eval.py reads)")
    return jaxrl_m_map.unwrap_wandb(config)


def _metadata(config: Mapping[str, Any], file: Path) -> dict[str, Any]:
    try:
        meta = config["bridgedata_config"]["action_proprio_metadata"]
        out = {k: {m: [float(x) for x in meta[k][m]] for m in ("mean", "std")} for k in ("action", "proprio")}
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(str(file), "bridgedata_config.action_proprio_metadata",
                          f"missing or malformed ({type(e).__name__}: {e}); the policy needs the action "
                          "statistics to un-normalise") from e
    return out


def _adam(opt_states: Any, algo: str, step: int, params_like: Mapping[str, Any]) -> dict[str, Any] | None:
    """The original's Adam moments as bdv2's raw opt_state ({"0": {count, mu, nu}, "1": {count}}), if present."""
    state = opt_states.get("actor") if isinstance(opt_states, dict) and "actor" in opt_states else opt_states
    if not isinstance(state, dict):
        return None
    try:
        mu = jaxrl_m_map.to_bdv2(algo, flatten(state["0"]["mu"][jaxrl_m_map.ROOT]))
        nu = jaxrl_m_map.to_bdv2(algo, flatten(state["0"]["nu"][jaxrl_m_map.ROOT]))
    except (KeyError, TypeError):
        return None
    if ckpt_tree.first_difference(params_like, mu) or ckpt_tree.first_difference(params_like, nu):
        return None
    def count(part: str) -> np.ndarray:
        value = state[part].get("count", step) if isinstance(state.get(part), dict) else step
        return np.asarray(value, np.int32)

    return {"0": {"count": count("0"), "mu": unflatten(mu), "nu": unflatten(nu)}, "1": {"count": count("1")}}


def import_jaxrl_m(ckpt: Path, config_file: Path, out: Path, data_root: str | None = None) -> Path:
    """Write a bdv2 run directory ``out`` from an original checkpoint and its config JSON; returns ``out``.

    Raises:
        ConfigError: the config names something bdv2 cannot host (the key is named).
        CheckpointError: the checkpoint is unreadable or its parameters do not fit the network of the config.
    """
    from .model import Run, Task
    from .settings import build_settings

    config = read_config(config_file)
    algo, keys = jaxrl_m_map.settings_from_config(config, str(config_file))
    metadata = _metadata(config, config_file)
    out = out.expanduser().resolve()
    if ckpt_tree.step_dirs(out):
        raise CheckpointError(f"{out}: already holds checkpoints; import into a new directory")
    state = read_jaxrl_m_checkpoint(ckpt)["state"]
    params = jaxrl_m_map.to_bdv2(algo, _actor(state["params"], ckpt))
    target = jaxrl_m_map.to_bdv2(algo, _actor(state["target_params"], ckpt)) if algo == Algo.GC_DDPM_BC else params
    settings = build_settings({"data_root": data_root or str(config.get("data_path") or out),
                               "save_dir": str(out.parent), **keys}, str(config_file), "")
    if algo == Algo.GC_DDPM_BC:
        settings = _ddpm_defaults(settings)
    run = Run(out.name, algo, Task("imported", (), str(out / METADATA_FILE)), settings, str(config_file),
              (f"imported from {ckpt} ({JAXRL_M})",))
    expected = abstract_params(run)
    _check(expected, unflatten(params), f"{ckpt} with {config_file}")
    step = int(np.asarray(state.get("step", 0)))
    raw = {"step": np.asarray(step, np.int32), "params": unflatten(params), "target_params": unflatten(target),
           "rng": np.asarray(state.get("rng", np.zeros(2, np.uint32)), np.uint32),
           "opt_state": _adam(state.get("opt_states"), algo, step, expected)}
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / METADATA_FILE, metadata, indent=2)
    write_json_atomic(out / ckpt_tree.CONFIG_SNAPSHOT, {**run.to_dict(), "metadata": metadata, "imported_from": {
        "format": JAXRL_M, "checkpoint": str(ckpt), "config": str(config_file), "step": step}},
        indent=2, sort_keys=False)
    save_state(run, raw, out, step)
    return out


def _ddpm_defaults(settings: Any) -> Any:
    import dataclasses

    return dataclasses.replace(settings, obs_horizon=settings.obs_horizon or 1,
                               act_pred_horizon=settings.act_pred_horizon or 1)


def example_batch(run: Any, image_size: int = 64) -> dict[str, Any]:
    """A one-row batch with the shapes the run's agent is initialised from."""
    s = run.settings
    h, k = s.obs_horizon, s.act_pred_horizon
    image = np.zeros((1, *((h,) if h else ()), image_size, image_size, 3), np.uint8)
    obs = {"image": image, "proprio": np.zeros((1, *((h,) if h else ()), 7), np.float32)}
    goals: dict[str, Any] = {"image": np.zeros((1, image_size, image_size, 3), np.uint8)}
    if run.algo == Algo.LC_BC:
        goals = {"language": np.zeros((1, 512), np.float32)}
    actions = np.zeros((1, k, 7) if k else (1, 7), np.float32)
    return {"observations": obs, "goals": goals, "actions": actions}


def abstract_params(run: Any) -> dict[str, Any]:
    """The shapes of the run's model parameters (nothing computed)."""
    import jax

    from .agents import make_agent

    agent = make_agent(run)
    shapes = jax.eval_shape(lambda: agent.init(jax.random.PRNGKey(0), example_batch(run)))
    return jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), _plain(shapes))


def _plain(tree: Any) -> Any:
    return {str(k): _plain(v) for k, v in tree.items()} if isinstance(tree, Mapping) else tree


def save_state(run: Any, raw: Mapping[str, Any], out: Path, step: int) -> None:
    """Save a loop.TrainState built from ``raw`` (a fresh Adam state where raw["opt_state"] is None) as
    ``out/checkpoints/<step>``, the layout loop.train_and_evaluate resumes from."""
    import jax
    import jax.numpy as jnp
    import orbax.checkpoint as ocp

    from .loop import TrainState, make_optimizer

    tx = make_optimizer(run)
    params = jax.tree.map(jnp.asarray, raw["params"])
    opt_state = tx.init(params)
    if raw.get("opt_state") is not None:
        adam, schedule = opt_state
        o = raw["opt_state"]
        opt_state = (adam._replace(count=jnp.asarray(o["0"]["count"]), mu=jax.tree.map(jnp.asarray, o["0"]["mu"]),
                                   nu=jax.tree.map(jnp.asarray, o["0"]["nu"])),
                     schedule._replace(count=jnp.asarray(o["1"]["count"])))
    state = TrainState(step=jnp.asarray(step, jnp.int32), params=params,
                       target_params=jax.tree.map(jnp.asarray, raw["target_params"]), opt_state=opt_state,
                       rng=jnp.asarray(raw["rng"], jnp.uint32))
    with ocp.CheckpointManager(out / ckpt_tree.CHECKPOINTS, options=ocp.CheckpointManagerOptions(
            create=True, enable_async_checkpointing=False)) as manager:
        manager.save(step, args=ocp.args.StandardSave(state))
        manager.wait_until_finished()


def export_jaxrl_m(run_path: Path, out: Path) -> Path:
    """Write ``out/checkpoint_<step>`` (flax legacy msgpack of the original agent's state dict) and
    ``out/config.json`` from a bdv2 run (or step) directory; returns the checkpoint file."""
    from flax import serialization

    from .model import Run

    run_dir, step_dir = ckpt_tree.locate(run_path)
    snapshot = ckpt_tree.read_snapshot(run_dir)
    run = Run.from_dict(snapshot)
    if run.settings.encoder not in jaxrl_m_map.HOSTED_ENCODERS:
        raise CheckpointError(f"{run_dir}: encoder {run.settings.encoder.value!r} has no counterpart in the original "
                              f"code; export runs with {', '.join(jaxrl_m_map.HOSTED_ENCODERS)}")
    raw = ckpt_tree.restore_raw(step_dir)
    step = int(raw.get("step", int(step_dir.name)))

    def original(tree: Mapping[str, Any]) -> dict[str, Any]:
        return {jaxrl_m_map.ROOT: unflatten(jaxrl_m_map.to_jaxrl_m(run.algo, flatten(tree)))}

    adam = raw["opt_state"]["0"]
    opt = {"0": {"count": np.asarray(adam["count"]), "mu": original(adam["mu"]), "nu": original(adam["nu"])},
           "1": {"count": np.asarray(raw["opt_state"]["1"]["count"])}}
    state = {"step": np.asarray(step), "params": original(raw["params"]),
             # bc/gc_bc/lc_bc sample with params; gc_ddpm_bc with target_params (bdv2 evaluates with the target).
             "target_params": original(raw["target_params"]),
             "opt_states": {"actor": opt} if run.algo == Algo.GC_DDPM_BC else opt, "rng": np.asarray(raw["rng"])}
    if run.algo != Algo.GC_DDPM_BC:
        state["params"] = state["target_params"]
    out = out.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    file = out / f"checkpoint_{step}"
    write_atomic(file, serialization.msgpack_serialize({"state": state}))
    config = jaxrl_m_map.config_from_settings(run.algo, run.settings, snapshot["metadata"])
    write_json_atomic(out / "config.json", config, indent=2, sort_keys=False)
    return file
