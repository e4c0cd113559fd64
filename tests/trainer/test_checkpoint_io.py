"""Checkpoints of the original BridgeData V2 code in and out of bdv2, init_from, keep_checkpoints: all and
metadata: bridge_v2.

With the original and its venv (tests/original_code.py): the original code builds gc_bc, lc_bc (legacy
msgpack) and gc_ddpm_bc (orbax) agents at 32 px with a ResNet-18/34 "bridge" encoder, perturbs every
parameter and saves them as its train.py does (tests/trainer/original_ckpt_script.py); bdv2 imports them and
load_policy(...).act must give the original's sample_actions(argmax=True) * std + mean (gc_ddpm_bc: its score
network's outputs, and its sampled actions for the same seed); the export is restored by the original's
restore_checkpoint onto the agent its eval.py builds and must give the same outputs again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import original_code
import pytest

from bdv2.trainer import config, jaxrl_m_map, loop, model
from bdv2.trainer.checkpoint_io import export_jaxrl_m, import_jaxrl_m
from bdv2.trainer.ckpt_tree import CheckpointError, restore_raw
from bdv2.trainer.errors import ConfigError

from . import helpers

SCRIPT = Path(__file__).with_name("original_ckpt_script.py")
IMAGE = 32
TOL = 1e-4
BRIDGE_MEAN = [1.9296819e-04, 1.3667766e-04, -1.4583133e-04, -1.8390431e-04, -3.0808983e-04, 2.7425270e-04,
               5.9716219e-01]
BRIDGE_STD = [0.00912848, 0.0127196, 0.01229497, 0.02606696, 0.02875283, 0.07807977, 0.48710242]


def original_config(agent: str) -> dict[str, Any]:
    """An original config (experiments/configs/train_config.py's shape) at test size."""
    meta = {"mean": BRIDGE_MEAN, "std": BRIDGE_STD}
    c: dict[str, Any] = {
        "agent": agent, "encoder": "resnetv1-34-bridge-film" if agent == "lc_bc" else "resnetv1-18-bridge",
        "encoder_kwargs": {"pooling_method": "avg", "add_spatial_coordinates": True, "act": "swish"},
        "dataset_kwargs": {"goal_relabeling_strategy": "uniform", "relabel_actions": True,
                           "goal_relabeling_kwargs": {"reached_proportion": 0.0}},
        "bridgedata_config": {"action_proprio_metadata": {"action": meta, "proprio": meta}},
        "batch_size": 8, "seed": 42}
    if agent == "gc_ddpm_bc":
        c["agent_kwargs"] = {"score_network_kwargs": {"time_dim": 32, "num_blocks": 3, "dropout_rate": 0.1,
                                                      "hidden_dim": 256, "use_layer_norm": True},
                             "early_goal_concat": True, "shared_goal_encoder": True, "use_proprio": False,
                             "beta_schedule": "cosine", "diffusion_steps": 20, "action_samples": 1,
                             "repeat_last_step": 0, "learning_rate": 3e-4, "warmup_steps": 2000,
                             "actor_decay_steps": 2_000_000}
        c["dataset_kwargs"].update(obs_horizon=1, act_pred_horizon=1)
        return c
    c["agent_kwargs"] = {"network_kwargs": {"hidden_dims": [32, 32], "dropout_rate": 0.1},
                         "policy_kwargs": {"tanh_squash_distribution": False, "fixed_std": [1] * 7,
                                           "state_dependent_std": False},
                         "early_goal_concat": True, "shared_goal_encoder": True, "use_proprio": agent == "gc_bc",
                         "learning_rate": 3e-4, "warmup_steps": 2000, "decay_steps": 2_000_000}
    if agent == "lc_bc":
        c["text_processor"], c["text_processor_kwargs"] = "muse_embedding", {}
    return c


# -- refusals and names (no original needed) ---------------------------------------------------------

@pytest.mark.parametrize(("edit", "key"), [
    (lambda c: c.update(encoder="resnetv1-50-bridge"), "encoder"),
    (lambda c: c["encoder_kwargs"].pop("act"), "encoder_kwargs.act"),
    (lambda c: c["encoder_kwargs"].update(pooling_method="spatial_learned_embeddings"), "encoder_kwargs.pooling"),
    (lambda c: c["agent_kwargs"].update(early_goal_concat=False), "agent_kwargs.early_goal_concat"),
    (lambda c: c["agent_kwargs"]["policy_kwargs"].update(tanh_squash_distribution=True), "tanh_squash"),
    (lambda c: c["agent_kwargs"]["policy_kwargs"].update(fixed_std=None), "fixed_std"),
    (lambda c: c["agent_kwargs"]["network_kwargs"].update(use_layer_norm=True), "use_layer_norm"),
    (lambda c: c["dataset_kwargs"].update(act_pred_horizon=4), "act_pred_horizon"),
    (lambda c: c["dataset_kwargs"].update(normalization_type="bounds"), "normalization_type"),
    (lambda c: c.update(agent="gc_iql"), "agent"),
], ids=["encoder", "act", "pooling", "late-fusion", "tanh", "learned-std", "layer-norm", "chunks", "bounds", "iql"])
def test_configs_bdv2_cannot_host_are_refused_naming_the_key(edit: Any, key: str) -> None:
    c = original_config("gc_bc")
    edit(c)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        jaxrl_m_map.settings_from_config(c, "config.json")


def test_ddpm_refusals_and_settings() -> None:
    algo, s = jaxrl_m_map.settings_from_config(original_config("gc_ddpm_bc"), "c.json")
    assert algo == "gc_ddpm_bc" and s["diffusion_steps"] == 20 and s["obs_horizon"] == 1
    for key, value in (("use_layer_norm", False), ("num_blocks", 2), ("time_dim", 64)):
        c = original_config("gc_ddpm_bc")
        c["agent_kwargs"]["score_network_kwargs"][key] = value
        with pytest.raises(ConfigError, match=key):
            jaxrl_m_map.settings_from_config(c, "c.json")


def test_parameter_names_round_trip() -> None:
    flat = {"encoder/encoder/ResNetBlock_0/MyGroupNorm_1/scale": 1, "reverse_network/MLPResNetBlock_2/Dense_0/bias": 2,
            "reverse_network/MLPResNetBlock_2/Dense_1/bias": 3, "reverse_network/Dense_0/kernel": 4,
            "time_preprocess/kernel": 5, "cond_encoder/Dense_1/bias": 6}
    ours = jaxrl_m_map.to_bdv2("gc_ddpm_bc", flat)
    assert ours["encoding/encoder/ResNetBlock_0/GroupNorm_1/scale"] == 1
    assert ours["MLPResNet_0/MLPResNetBlock_2/Dense_1/bias"] == 2  # the 4x-wide Dense: bdv2 creates it second
    assert ours["MLPResNet_0/Dense_0/kernel"] == 4 and ours["FourierFeatures_0/kernel"] == 5
    assert jaxrl_m_map.to_jaxrl_m("gc_ddpm_bc", ours) == flat
    gauss = {"encoder/encoder/conv_init/kernel": 1, "network/Dense_2/bias": 2, "Dense_0/kernel": 3}
    assert jaxrl_m_map.to_bdv2("gc_bc", gauss) == {"encoding/encoder/conv_init/kernel": 1, "MLP_0/Dense_2/bias": 2,
                                                   "Dense_0/kernel": 3}


def test_goal_relabeling_goes_both_ways() -> None:
    from bdv2.trainer.settings import build_settings

    c = original_config("gc_bc")
    c["dataset_kwargs"].update(goal_relabeling_strategy="delta_goals", goal_relabeling_kwargs={"goal_delta": [2, 5]})
    _, keys = jaxrl_m_map.settings_from_config(c, "c.json")
    s = build_settings({"data_root": "d", "save_dir": "s", **keys}, "c.json", "")
    assert s.goal_relabeling == "delta_goals" and s.goal_relabeling_kwargs == {"goal_delta": (2, 5)}
    back = jaxrl_m_map.config_from_settings("gc_bc", s, c["bridgedata_config"]["action_proprio_metadata"])
    assert back["dataset_kwargs"]["goal_relabeling_kwargs"] == {"goal_delta": [2, 5]}  # no reached_proportion
    c["dataset_kwargs"].update(goal_relabeling_strategy="geometric", goal_relabeling_kwargs={"reached_proportion": 0.1})
    _, keys = jaxrl_m_map.settings_from_config(c, "c.json")
    with pytest.raises(ConfigError, match=r"goal_relabeling_kwargs\.discount"):
        build_settings({"data_root": "d", "save_dir": "s", **keys}, "c.json", "")


def test_a_wandb_style_config_is_unwrapped() -> None:
    plain = original_config("gc_bc")
    wandb = {k: {"desc": None, "value": v} for k, v in plain.items()} | {"_wandb": {"value": {"cli_version": "0"}}}
    assert jaxrl_m_map.unwrap_wandb(wandb) == plain
    assert jaxrl_m_map.unwrap_wandb(plain) == plain


def test_import_errors_name_the_path(tmp_path: Path) -> None:
    from flax import serialization

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(original_config("gc_bc")))
    bad = {"modules_actor": {"Dense_0": {"kernel": np.zeros((32, 7), np.float32), "bias": np.zeros(7, np.float32)},
                             "network": {"Dense_0": {"kernel": np.zeros((5, 32), np.float32)}}}}
    ckpt = tmp_path / "checkpoint_10"
    ckpt.write_bytes(serialization.msgpack_serialize({"state": {"step": 10, "params": bad, "target_params": bad}}))
    with pytest.raises(CheckpointError, match="differ at MLP_0/Dense_0/bias: missing"):
        import_jaxrl_m(ckpt, cfg, tmp_path / "run")
    ckpt.write_bytes(b"not msgpack")
    with pytest.raises(CheckpointError, match="not an agent checkpoint"):
        import_jaxrl_m(ckpt, cfg, tmp_path / "run")


# -- the original's own checkpoints -------------------------------------------------------------------

AGENTS = {"gc_bc": "msgpack", "lc_bc": "msgpack", "gc_ddpm_bc": "orbax"}


def _inputs(agent: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    b = 3
    image = rng.integers(0, 256, (b, IMAGE, IMAGE, 3), dtype=np.uint8)
    out = {"image": image[:, None] if agent == "gc_ddpm_bc" else image,
           "goal": rng.integers(0, 256, (b, IMAGE, IMAGE, 3), dtype=np.uint8),
           "proprio": rng.normal(size=(b, 7)).astype(np.float32),
           "language": rng.normal(size=(b, 512)).astype(np.float32)}
    if agent == "gc_ddpm_bc":
        out.update(noisy=rng.normal(size=(b, 1, 7)).astype(np.float32), time=rng.integers(0, 20, (b, 1)))
    return out


def _run_original(jobs: list[dict[str, Any]], tmp: Path) -> None:
    python = original_code.original_python()
    root = original_code.original_root()
    file = tmp / f"jobs_{jobs[0]['mode']}.json"
    file.write_text(json.dumps(jobs))
    env = {**os.environ, "PYTHONPATH": str(root), "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([str(python), str(SCRIPT), str(file)], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The original's checkpoints and outputs, one directory per agent."""
    original_code.original_python()  # skips, naming what is missing
    tmp = tmp_path_factory.mktemp("original")
    jobs = []
    for agent, fmt in AGENTS.items():
        d = tmp / agent
        d.mkdir()
        (d / "config.json").write_text(json.dumps(original_config(agent)))
        np.savez(d / "inputs.npz", **_inputs(agent))
        jobs.append({"mode": "save", "config": str(d / "config.json"), "inputs": str(d / "inputs.npz"),
                     "out": str(d / "saved.npz"), "ckpt_dir": str(d / "ckpt"), "format": fmt})
    _run_original(jobs, tmp)
    return tmp


def _act(run_dir: Path, agent: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    from bdv2.trainer.policy import load_policy

    policy = load_policy(run_dir)
    # The original's outputs were computed on normalised proprio; act() normalises what it is given.
    obs = {"image": inputs["image"], "proprio": inputs["proprio"] * np.float32(BRIDGE_STD) + np.float32(BRIDGE_MEAN)}
    if agent == "lc_bc":
        return policy.act(obs, language=inputs["language"])
    return policy.act(obs, {"image": inputs["goal"]}, seed=0)


def _eps(run_dir: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    from bdv2.trainer.agents import make_agent
    from bdv2.trainer.policy import load_policy

    policy = load_policy(run_dir)
    model = make_agent(policy.run).model
    b = len(inputs["image"])
    return np.asarray(model.apply({"params": policy.params}, {"image": inputs["image"]}, {"image": inputs["goal"]},
                                  inputs["noisy"].reshape(b, -1), inputs["time"], train=False)).reshape(b, 1, 7)


@pytest.mark.slow
def test_original_checkpoints_import_act_and_export(original: Path, tmp_path: Path) -> None:
    """Every agent: import -> act == the original's; export -> the original restores the same outputs."""
    restore_jobs = []
    for agent in AGENTS:
        d = original / agent
        ckpt = next((d / "ckpt").iterdir())
        run_dir = import_jaxrl_m(ckpt, d / "config.json", tmp_path / agent)
        inputs, saved = dict(np.load(d / "inputs.npz")), dict(np.load(d / "saved.npz"))
        actions = _act(run_dir, agent, inputs)
        assert actions.shape == saved["actions"].shape
        assert np.abs(actions - saved["actions"]).max() < TOL, agent
        if agent == "gc_ddpm_bc":
            assert np.abs(_eps(run_dir, inputs) - saved["eps"]).max() < TOL
        assert int(restore_raw(run_dir / "checkpoints" / "1234")["step"]) == 1234
        exported = export_jaxrl_m(run_dir, tmp_path / f"{agent}_export")
        restore_jobs.append({"mode": "restore", "config": str(exported.parent / "config.json"),
                             "inputs": str(d / "inputs.npz"), "out": str(tmp_path / f"{agent}.npz"),
                             "ckpt": str(exported)})
    _run_original(restore_jobs, tmp_path)
    for agent in AGENTS:
        saved, restored = np.load(original / agent / "saved.npz"), np.load(tmp_path / f"{agent}.npz")
        for key in saved.files:
            assert np.abs(saved[key] - restored[key]).max() < TOL, (agent, key)


# -- init_from, keep_checkpoints: all, metadata: bridge_v2 --------------------------------------------

def _run(tfdata: Path, tmp: Path, **over: Any) -> model.Run:
    tmp.mkdir(parents=True, exist_ok=True)
    g = helpers.base_global(tfdata, tmp / "runs", augment=False, **over)
    y = helpers.write_yaml(tmp / "m.yaml", {"global": g, "matrix": {"algos": ["gc_bc"], "tasks": ["kitchen"]}})
    return config.load(y).runs[0]


def test_keep_all_and_init_from(tfdata: Path, tmp_path: Path) -> None:
    source = _run(tfdata, tmp_path / "a", num_steps=4, save_interval=1, eval_interval=4, log_interval=2,
                  keep_checkpoints="all")
    assert source.settings.keep_checkpoints is None
    loop.train_and_evaluate(source)
    steps = sorted(int(p.name) for p in (source.workdir / "checkpoints").iterdir())
    assert steps == [1, 2, 3, 4]
    step2 = source.workdir / "checkpoints" / "2"
    # lr(0) = 0 (the warmup starts at 0, whatever its length): one step changes nothing, so the fine-tuned
    # run's step-1 params are the source's step-2 params. A one-step run takes a one-step warmup (config refuses
    # a warmup longer than num_steps).
    tuned = _run(tfdata, tmp_path / "b", num_steps=1, warmup_steps=1, save_interval=1, eval_interval=1,
                 log_interval=1, init_from=str(step2))
    loop.train_and_evaluate(tuned)
    got, want = restore_raw(tuned.workdir / "checkpoints" / "1"), restore_raw(step2)
    assert int(got["step"]) == 1
    np.testing.assert_array_equal(got["params"]["Dense_0"]["kernel"], want["params"]["Dense_0"]["kernel"])
    assert not np.array_equal(want["params"]["Dense_0"]["kernel"],
                              restore_raw(source.workdir / "checkpoints" / "4")["params"]["Dense_0"]["kernel"])
    other = _run(tfdata, tmp_path / "c", num_steps=1, warmup_steps=1, hidden_dims=[16],
                 init_from=str(source.workdir))
    with pytest.raises(CheckpointError, match=r"differ at Dense_0/kernel: shape \(32, 7\), the model has \(16, 7\)"):
        loop.train_and_evaluate(other)


def test_export_refuses_an_encoder_the_original_lacks(tmp_path: Path) -> None:
    from .test_policy import written_run

    with pytest.raises(CheckpointError, match="'tiny' has no counterpart"):
        export_jaxrl_m(written_run(tmp_path, "gc_bc"), tmp_path / "out")


def test_bridge_v2_metadata_is_the_originals(tfdata: Path, tmp_path: Path) -> None:
    from bdv2.trainer.model import Metadata

    run = _run(tfdata, tmp_path, metadata="bridge_v2")
    meta = Metadata.load(run.task.metadata)
    np.testing.assert_allclose(meta.action_mean, BRIDGE_MEAN, rtol=1e-6)
    np.testing.assert_allclose(meta.action_std, BRIDGE_STD, rtol=1e-6)
    # The original normalises proprio with its "proprio" entry, which its published config fills with the
    # action statistics.
    np.testing.assert_allclose(meta.proprio_mean, BRIDGE_MEAN, rtol=1e-6)
    np.testing.assert_allclose(meta.proprio_std, BRIDGE_STD, rtol=1e-6)
    root = original_code.original_root()
    if root is not None:
        sys.path.insert(0, str(root))
        try:
            from experiments.configs.data_config import ACTION_PROPRIO_METADATA as published
        except ImportError:
            return
        finally:
            sys.path.remove(str(root))
        for k in ("action", "proprio"):
            np.testing.assert_allclose(getattr(meta, f"{k}_mean"), published[k]["mean"], rtol=1e-6)
            np.testing.assert_allclose(getattr(meta, f"{k}_std"), published[k]["std"], rtol=1e-6)


def test_cli_help_without_extras_and_a_refused_config(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bdv2.cli import main

    from .test_train_console import bdv2_without_extras

    for args in (("checkpoint", "--help"), ("checkpoint", "import", "--help"), ("checkpoint", "export", "--help")):
        r = bdv2_without_extras(*args)
        assert r.returncode == 0 and "Usage:" in r.stdout and "bdv2 checkpoint import --from jaxrl_m" in r.stdout
    c = original_config("gc_bc")
    c["agent_kwargs"]["policy_kwargs"]["tanh_squash_distribution"] = True
    (tmp_path / "config.json").write_text(json.dumps(c))
    (tmp_path / "checkpoint_1").write_bytes(b"")
    r = CliRunner().invoke(main, ["checkpoint", "import", "--from", "jaxrl_m", str(tmp_path / "checkpoint_1"),
                                  "--config", str(tmp_path / "config.json"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and "agent_kwargs.policy_kwargs.tanh_squash_distribution" in r.output, r.output
    assert not (tmp_path / "run").exists()


ORBAX_041_WRITE = """
import sys
import jax.numpy as jnp
import orbax.checkpoint as ocp
tree = {"state": {"step": jnp.asarray(5), "params": {"modules_actor": {"Dense_0": {"kernel": jnp.ones((3, 7))}}}}}
ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_ocdbt=False)).save(sys.argv[1] + "/zarr/checkpoint_5", tree)
ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_ocdbt=True)).save(sys.argv[1] + "/ocdbt/checkpoint_5", tree)
"""


def test_orbax_per_array_layouts_of_the_originals_era_are_read(tmp_path: Path) -> None:
    """orbax-checkpoint 0.4.1 (the original's venv) per-array layouts, zarr and OCDBT, read by today's orbax."""
    from bdv2.trainer.checkpoint_io import read_jaxrl_m_checkpoint

    python = original_code.original_python()
    done = subprocess.run([str(python), "-c", ORBAX_041_WRITE, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-2000:]
    for layout in ("zarr", "ocdbt"):
        state = read_jaxrl_m_checkpoint(tmp_path / layout / "checkpoint_5")["state"]
        assert int(state["step"]) == 5
        np.testing.assert_array_equal(state["params"]["modules_actor"]["Dense_0"]["kernel"], np.ones((3, 7)))
