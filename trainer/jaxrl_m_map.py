"""The original BridgeData V2 (jaxrl_m) config and parameter names, translated to and from bdv2's.

The original (https://github.com/rail-berkeley/bridge_data_v2) saves a whole agent with
flax.training.checkpoints.save_checkpoint (experiments/train.py): ``{"state": {"step", "params",
"target_params", "opt_states", "rng"}}``, its parameters under ``modules_actor`` (common.ModuleDict).
experiments/eval.py rebuilds the agent from a config JSON (agent, agent_kwargs, encoder, encoder_kwargs,
dataset_kwargs, bridgedata_config.action_proprio_metadata, text_processor).

Parameter paths, original (below ``modules_actor/``) <-> bdv2:

    encoder/encoder/...              <-> encoding/encoder/...       (GCEncodingWrapper / LCEncodingWrapper)
    .../MyGroupNorm_<j>              <-> .../GroupNorm_<j>
    network/Dense_<i>                <-> MLP_0/Dense_<i>            (bc, gc_bc, lc_bc)
    Dense_0                          <-> Dense_0                    (the means)
    time_preprocess/kernel           <-> FourierFeatures_0/kernel   (gc_ddpm_bc)
    cond_encoder/Dense_<i>           <-> MLP_0/Dense_<i>
    reverse_network/...              <-> MLPResNet_0/...           (MLPResNetBlock_<i>/Dense_0 <-> Dense_1)

A config bdv2's networks cannot reproduce exactly is refused, naming its key (`settings_from_config`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .settings import GOAL_RELABELING, Algo, EncoderName, GoalRelabeling, Settings

ROOT = "modules_actor"
DDPM_TIME_DIM, DDPM_NUM_BLOCKS, DDPM_TARGET_UPDATE_RATE = 32, 3, 0.002
HOSTED_ENCODERS = {EncoderName.RESNET_V1_34_BRIDGE.value: False, EncoderName.RESNET_V1_18_BRIDGE.value: False,
                   "resnetv1-34-bridge-film": True}
"""Original encoder name -> whether it is the FiLM variant; each exists in bdv2 under the same name."""
ENCODER_FIXED = {"pooling_method": "avg", "add_spatial_coordinates": True, "act": "swish", "norm": "group",
                 "num_filters": 64, "use_multiplicative_cond": False, "use_spatial_softmax": False}
"""encoder_kwargs bdv2's ResNetEncoder hosts, with the one value it implements."""
ENCODER_DEFAULTS = {"pooling_method": "avg", "add_spatial_coordinates": False, "act": "relu", "norm": "group",
                    "num_filters": 64, "use_multiplicative_cond": False, "use_spatial_softmax": False}
"""The original ResNetEncoder's defaults (jaxrl_m/vision/resnet_v1.py), for keys a config leaves out."""
ENCODER_UNUSED = ("num_spatial_blocks", "softmax_temperature", "dtype")
"""Keys that only matter to poolings other than avg."""

_GAUSSIAN = [("encoder/encoder/", "encoding/encoder/"), ("network/", "MLP_0/")]
_DDPM = [("encoder/encoder/", "encoding/encoder/"), ("time_preprocess/", "FourierFeatures_0/"),
         ("cond_encoder/", "MLP_0/"), ("reverse_network/", "MLPResNet_0/")]


def _rules(algo: str) -> list[tuple[str, str]]:
    return _DDPM if algo == Algo.GC_DDPM_BC else _GAUSSIAN


def _swap_block_denses(path: str) -> str:
    """MLPResNetBlock_<i>/Dense_0 <-> Dense_1: the original creates the 4x-wide Dense first, bdv2's
    networks.MLPResNetBlock the output Dense (the same computation, the names in the other order)."""
    return re.sub(r"(MLPResNetBlock_\d+/Dense_)([01])(/)", lambda m: m[1] + str(1 - int(m[2])) + m[3], path)


def to_bdv2(algo: str, flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat original params (paths below modules_actor/) -> flat bdv2 params."""
    out = {}
    for path, v in flat.items():
        new = re.sub(r"(^|/)MyGroupNorm_(\d+)", r"\1GroupNorm_\2", path)
        for old_prefix, new_prefix in _rules(algo):
            if new.startswith(old_prefix):
                new = new_prefix + new[len(old_prefix):]
                break
        out[_swap_block_denses(new)] = v
    return out


def to_jaxrl_m(algo: str, flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat bdv2 params -> flat original params (paths below modules_actor/)."""
    out = {}
    for path, v in flat.items():
        new = re.sub(r"(^|/)GroupNorm_(\d+)", r"\1MyGroupNorm_\2", path)
        for old_prefix, new_prefix in _rules(algo):
            if new.startswith(new_prefix):
                new = old_prefix + new[len(new_prefix):]
                break
        out[_swap_block_denses(new)] = v
    return out


def unwrap_wandb(config: Mapping[str, Any]) -> dict[str, Any]:
    """A W&B run config ({"key": {"desc": ..., "value": ...}}) -> plain; a plain config unchanged."""
    values = [v for k, v in config.items() if not k.startswith("_")]
    if values and all(isinstance(v, Mapping) and "value" in v for v in values):
        return {k: v["value"] for k, v in config.items() if not k.startswith("_")}
    return dict(config)


class _Refuse:
    def __init__(self, file: str) -> None:
        self.file = file

    def __call__(self, key: str, problem: str, fix: str = "") -> ConfigError:
        return ConfigError(self.file, key, problem + " (bdv2 cannot reproduce this network exactly)", fix)


def _encoder(config: Mapping[str, Any], algo: Any, refuse: _Refuse) -> str:
    name = config.get("encoder")
    if name not in HOSTED_ENCODERS:
        raise refuse("encoder", f"{name!r} is not hosted", f"bdv2 hosts {', '.join(HOSTED_ENCODERS)}")
    kwargs = dict(config.get("encoder_kwargs") or {})
    film = bool(kwargs.pop("use_film", HOSTED_ENCODERS[name]))
    if film != (algo == Algo.LC_BC) or film != HOSTED_ENCODERS[name]:
        raise refuse("encoder_kwargs.use_film", f"FiLM={film} with encoder {name!r} and agent {algo!r}",
                     "FiLM encoders (resnetv1-34-bridge-film) go with lc_bc only")
    for key, value in kwargs.items():
        if key in ENCODER_UNUSED:
            continue
        if key not in ENCODER_FIXED:
            raise refuse(f"encoder_kwargs.{key}", f"unknown encoder option {value!r}")
    for key, want in ENCODER_FIXED.items():
        got = kwargs.get(key, ENCODER_DEFAULTS[key])
        if got != want:
            raise refuse(f"encoder_kwargs.{key}", f"{got!r} (bdv2's encoder has {want!r})")
    return str(name)


def _gaussian(kw: Mapping[str, Any], algo: Any, refuse: _Refuse) -> dict[str, Any]:
    net = dict(kw.get("network_kwargs") or {})
    pol = dict(kw.get("policy_kwargs") or {})
    if net.get("use_layer_norm"):
        raise refuse("agent_kwargs.network_kwargs.use_layer_norm", "true (bdv2's policy MLP has no LayerNorm)")
    if pol.get("tanh_squash_distribution"):
        raise refuse("agent_kwargs.policy_kwargs.tanh_squash_distribution", "true (bdv2's policy is not squashed)")
    std = pol.get("fixed_std")
    if std is None or any(float(s) != 1.0 for s in std):
        raise refuse("agent_kwargs.policy_kwargs.fixed_std", f"{std!r}: bdv2's policy has a fixed std of 1 "
                     "(no learned std)")
    if pol.get("init_final") is not None:
        raise refuse("agent_kwargs.policy_kwargs.init_final", "set (bdv2 does not host it)")
    if algo == Algo.GC_BC and not kw.get("early_goal_concat", False):
        raise refuse("agent_kwargs.early_goal_concat", "false: late goal fusion (a separate goal encoder)",
                     "bdv2 hosts early goal concatenation only")
    dropout = net.get("dropout_rate")
    return {"hidden_dims": list(net.get("hidden_dims", (256, 256))), "dropout": float(dropout or 0.0),
            "decay_steps": int(kw.get("decay_steps", 1_000_000))}


def _ddpm(kw: Mapping[str, Any], refuse: _Refuse) -> dict[str, Any]:
    score = dict(kw.get("score_network_kwargs") or {})
    checks: dict[str, Any] = {"time_dim": DDPM_TIME_DIM, "num_blocks": DDPM_NUM_BLOCKS, "use_layer_norm": True}
    for key, want in checks.items():
        if score.get(key) != want:
            raise refuse(f"agent_kwargs.score_network_kwargs.{key}", f"{score.get(key)!r} (bdv2 has {want!r})")
    if not kw.get("early_goal_concat", False):
        raise refuse("agent_kwargs.early_goal_concat", "false: late goal fusion", "bdv2 hosts early concat only")
    fixed: tuple[tuple[str, Any], ...] = (("beta_schedule", "cosine"), ("repeat_last_step", 0),
                                          ("target_update_rate", DDPM_TARGET_UPDATE_RATE))
    for key, want in fixed:
        if kw.get(key, want) != want:
            raise refuse(f"agent_kwargs.{key}", f"{kw.get(key)!r} (bdv2 has {want!r})")
    out: dict[str, Any] = {"dropout": float(score.get("dropout_rate") or 0.0),
                           "diffusion_steps": int(kw.get("diffusion_steps", 25))}
    if kw.get("actor_decay_steps") is not None:
        out["decay_steps"] = int(kw["actor_decay_steps"])
    return out


def _data(config: Mapping[str, Any], algo: Any, refuse: _Refuse) -> dict[str, Any]:
    ds = dict(config.get("dataset_kwargs") or {})
    out: dict[str, Any] = {k: ds[k] for k in ("obs_horizon", "act_pred_horizon", "relabel_actions", "augment",
                                              "shuffle_buffer_size") if ds.get(k) is not None}
    if ds.get("normalization_type", "normal") != "normal":
        raise refuse("dataset_kwargs.normalization_type", f"{ds['normalization_type']!r} (bdv2 normalises by "
                     "mean and std)")
    if algo != Algo.GC_DDPM_BC and ds.get("act_pred_horizon") is not None:
        raise refuse("dataset_kwargs.act_pred_horizon", f"{ds['act_pred_horizon']} with {algo}: the original's "
                     "policy then predicts one 7-d action for a chunk, bdv2's the whole chunk")
    if algo == Algo.BC and ds.get("obs_horizon") is not None:
        raise refuse("dataset_kwargs.obs_horizon", "set with bc: the original encodes the history unfolded")
    if ds.get("obs_horizon") and config.get("agent_kwargs", {}).get("use_proprio"):
        raise refuse("dataset_kwargs.obs_horizon", "history with use_proprio (the original cannot run it)")
    strategy = ds.get("goal_relabeling_strategy")
    if strategy in GOAL_RELABELING:  # the training data's goals; settings.build_settings checks the kwargs
        out["goal_relabeling"] = strategy
        out["goal_relabeling_kwargs"] = dict(ds.get("goal_relabeling_kwargs") or {})
    return out


def settings_from_config(config: Mapping[str, Any], file: str) -> tuple[Algo, dict[str, Any]]:
    """(algo, bdv2 settings keys) of an original config; data_root/save_dir are the caller's.

    Raises:
        ConfigError: naming the first key bdv2 cannot host.
    """
    refuse = _Refuse(file)
    algo = config.get("agent")
    if algo not in {a.value for a in Algo}:
        raise refuse("agent", f"{algo!r} is not one of bdv2's agents", ", ".join(a.value for a in Algo))
    kw = dict(config.get("agent_kwargs") or {})
    s: dict[str, Any] = {"encoder": _encoder(config, algo, refuse), "use_proprio": bool(kw.get("use_proprio", False))}
    s.update(_ddpm(kw, refuse) if algo == Algo.GC_DDPM_BC else _gaussian(kw, algo, refuse))
    s.update(_data(config, algo, refuse))
    for key in ("learning_rate", "warmup_steps"):
        if kw.get(key) is not None:
            s[key] = kw[key]
    for ours, theirs in (("train_batch_size", "batch_size"), ("num_steps", "num_steps"), ("seed", "seed"),
                         ("log_interval", "log_interval"), ("eval_interval", "eval_interval"),
                         ("save_interval", "save_interval")):
        if isinstance(config.get(theirs), int | float) and not isinstance(config.get(theirs), bool):
            s[ours] = int(config[theirs])
    return Algo(algo), s


def config_from_settings(algo: Algo, s: Settings, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The original's config JSON (what experiments/eval.py reads) for a bdv2 run's settings."""
    enc = {"pooling_method": "avg", "add_spatial_coordinates": True, "act": "swish"}
    if algo == Algo.GC_DDPM_BC:
        agent_kwargs: dict[str, Any] = {
            "score_network_kwargs": {"time_dim": DDPM_TIME_DIM, "num_blocks": DDPM_NUM_BLOCKS,
                                     "dropout_rate": s.dropout, "hidden_dim": 256, "use_layer_norm": True},
            "early_goal_concat": True, "shared_goal_encoder": True, "beta_schedule": "cosine",
            "diffusion_steps": s.diffusion_steps, "action_samples": 1, "repeat_last_step": 0,
            "target_update_rate": DDPM_TARGET_UPDATE_RATE}
    else:
        agent_kwargs = {"network_kwargs": {"hidden_dims": list(s.hidden_dims), "dropout_rate": s.dropout},
                        "policy_kwargs": {"tanh_squash_distribution": False, "fixed_std": [1.0] * 7,
                                          "state_dependent_std": False}}
        if algo == Algo.GC_BC:
            agent_kwargs.update(early_goal_concat=True, shared_goal_encoder=True)
    agent_kwargs.update(use_proprio=s.use_proprio, learning_rate=s.learning_rate, warmup_steps=s.warmup_steps)
    dataset_kwargs = {k: getattr(s, k) for k in ("obs_horizon", "act_pred_horizon") if getattr(s, k) is not None}
    relabeling = {k: list(v) if isinstance(v, tuple) else v for k, v in dict(s.goal_relabeling_kwargs).items()}
    if s.goal_relabeling is not GoalRelabeling.DELTA_GOALS:  # the original's delta_goals takes no reached_proportion
        relabeling["reached_proportion"] = s.reached_proportion
    dataset_kwargs.update(goal_relabeling_strategy=s.goal_relabeling.value, relabel_actions=s.relabel_actions,
                          goal_relabeling_kwargs=relabeling, augment=s.augment)
    config = {"agent": Algo(algo).value, "agent_kwargs": agent_kwargs, "encoder": s.encoder.value,
              "encoder_kwargs": enc,
              "dataset_kwargs": dataset_kwargs, "batch_size": s.train_batch_size, "seed": s.seed,
              "bridgedata_config": {"action_proprio_metadata": {k: dict(metadata[k]) for k in ("action", "proprio")}}}
    if algo == Algo.LC_BC:
        config["text_processor"], config["text_processor_kwargs"] = "muse_embedding", {}
    return config
