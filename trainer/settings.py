"""The settings of one run: every key allowed under ``global:`` and in a run's ``config_overrides``, their
types, defaults and allowed values, and the coercion that turns a YAML mapping into a checked `Settings`.

Pure: no file is read here (config.py reads the YAML, tasks.py the data directories).
"""

from __future__ import annotations

import difflib
import enum
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

from bdv2.trainer.errors import ConfigError


class Algo(enum.StrEnum):
    """The three agents (agents.py); the values are the YAML spellings."""

    BC = "bc"
    GC_BC = "gc_bc"
    GC_DDPM_BC = "gc_ddpm_bc"


class GoalRelabeling(enum.StrEnum):
    """How data.add_goals picks a goal for each step."""

    UNIFORM = "uniform"
    LAST_STATE_UPWEIGHTED = "last_state_upweighted"


class EncoderName(enum.StrEnum):
    """The image encoders (networks.make_encoder)."""

    RESNET_V1_34_BRIDGE = "resnetv1-34-bridge"
    TINY = "tiny"
    """For tests and the CPU demo."""


ALGOS = tuple(a.value for a in Algo)
ENCODERS = tuple(e.value for e in EncoderName)
GOAL_RELABELING = tuple(g.value for g in GoalRelabeling)
PLATFORMS = ("cpu", "gpu", "cuda", "rocm", "tpu")
# JAX_PLATFORMS names the CUDA backend "cuda"; the fork's jax_platform_name used "gpu".
PLATFORM_ALIASES = {"gpu": "cuda"}
ALGO_DECAY_KEY = {Algo.BC: "decay_steps_bc", Algo.GC_BC: "decay_steps_gc_bc",
                  Algo.GC_DDPM_BC: "actor_decay_steps_gc_ddpm_bc"}


@dataclass(frozen=True)
class Settings:
    """Every key allowed under ``global:`` and in a run's ``config_overrides``; defaults are the original's."""

    data_root: str
    save_dir: str
    train_batch_size: int = 256
    val_batch_size: int | None = None
    """Default: train_batch_size."""
    num_steps: int = 2_000_000
    eval_interval: int = 5000
    save_interval: int = 5000
    log_interval: int = 100
    eval_batches: int | None = None
    """Cap on validation batches per evaluation; None or <= 0: the whole validation split."""
    keep_checkpoints: int = 3
    seed: int = 42
    learning_rate: float = 3e-4
    warmup_steps: int = 2000
    decay_steps: int | None = None
    """Total schedule length (warmup included); default: the algorithm's key below."""
    decay_steps_bc: int = 1_000_000
    decay_steps_gc_bc: int = 1_000_000
    actor_decay_steps_gc_ddpm_bc: int = 1_000_000
    encoder: str = EncoderName.RESNET_V1_34_BRIDGE.value
    hidden_dims: tuple[int, ...] = (256, 256, 256)
    dropout: float = 0.1
    use_proprio: bool = False
    diffusion_steps: int = 20
    obs_horizon: int | None = None
    """Frames of history per sample; gc_ddpm_bc defaults to 1."""
    act_pred_horizon: int | None = None
    """Actions predicted per sample; gc_ddpm_bc defaults to 1."""
    metadata: str | None = None
    """Normalisation statistics (`bdv2 data stats`); default <data_root>/metadata.json."""
    relabel_actions: bool = True
    goal_relabeling: str = GoalRelabeling.UNIFORM.value
    reached_proportion: float = 0.0
    augment: bool = True
    shuffle_buffer_size: int = 25000
    cuda_visible_devices: str | None = None
    xla_flags: str | None = None
    use_pip_cuda_libs: bool = True
    jax_platform_name: str | None = None
    wandb_project: str | None = None
    """W&B project; unset: no W&B. Offline when no credentials are found."""
    name_format: str = "{algo}_{task}"


SETTING_KEYS = tuple(f.name for f in fields(Settings))
POSITIVE = ("train_batch_size", "val_batch_size", "num_steps", "eval_interval", "save_interval", "log_interval",
            "keep_checkpoints", "diffusion_steps", "obs_horizon", "act_pred_horizon", "shuffle_buffer_size",
            "decay_steps", "decay_steps_bc", "decay_steps_gc_bc", "actor_decay_steps_gc_ddpm_bc")
CHOICES: dict[str, tuple[str, ...]] = {"encoder": ENCODERS, "goal_relabeling": GOAL_RELABELING,
                                       "jax_platform_name": PLATFORMS}


def run_env(s: Settings) -> dict[str, str]:
    """The environment keys a run's settings ask for (XLA_FLAGS: the YAML's flags alone, before merging)."""
    env: dict[str, str] = {}
    if s.xla_flags:
        env["XLA_FLAGS"] = s.xla_flags
    if s.cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = s.cuda_visible_devices
    if s.jax_platform_name:
        env["JAX_PLATFORMS"] = PLATFORM_ALIASES.get(s.jax_platform_name, s.jax_platform_name)
    return env


def did_you_mean(word: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def check_keys(data: Mapping[str, Any], allowed: Sequence[str], file: str, where: str) -> None:
    for key in data:
        if key not in allowed:
            k = str(key)
            raise ConfigError(file, f"{where}.{k}" if where else k, "unknown key",
                              f"{did_you_mean(k, allowed)}allowed: {', '.join(allowed)}")


def _describe(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(hint))
    if get_origin(hint) is tuple:
        return f"a list of {_describe(get_args(hint)[0])}"
    return "null" if hint is type(None) else hint.__name__


def _coerce_int(value: Any, file: str, key: str, bad: ConfigError) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 2.0e+6
    if isinstance(value, str) and re.fullmatch(r"[0-9.]+e[0-9]+", value):
        raise ConfigError(file, key, f"got the text {value!r}: YAML 1.1 reads 1e6 as a string",
                          f"write {int(float(value))} or {float(value):.1e}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad
    return value


def _coerce(value: Any, hint: Any, file: str, key: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        for arg in get_args(hint):
            if arg is not type(None):
                return _coerce(value, arg, file, key)
    bad = ConfigError(file, key, f"expected {_describe(hint)}, got {type(value).__name__} {value!r}")
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        return _coerce_int(value, file, key, bad)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if hint is str:
        if key.endswith("cuda_visible_devices") and isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # `cuda_visible_devices: 0` means "0"
        if not isinstance(value, str):
            raise bad
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise bad
        return tuple(_coerce(v, get_args(hint)[0], file, f"{key}[{i}]") for i, v in enumerate(value))
    raise TypeError(f"unsupported setting type {hint!r}")  # an internal invariant: Settings uses the above only


def build_settings(data: Mapping[str, Any], file: str, where: str) -> Settings:
    """Settings from a mapping, checking every key and type (the data_root/save_dir requirement included)."""
    check_keys(data, SETTING_KEYS, file, where)
    for required in ("data_root", "save_dir"):
        if data.get(required) in (None, ""):
            raise ConfigError(file, f"{where}.{required}", "missing", "add it to the global: block")
    hints = get_type_hints(Settings)
    values = {k: _coerce(v, hints[k], file, f"{where}.{k}") for k, v in data.items()}
    for k in POSITIVE:
        v = values.get(k)
        if v is not None and v <= 0:
            raise ConfigError(file, f"{where}.{k}", f"must be a positive integer, got {v}")
    for k, allowed in CHOICES.items():
        v = values.get(k)
        if v is not None and v not in allowed:
            raise ConfigError(file, f"{where}.{k}", f"unknown value {v!r}",
                              f"{did_you_mean(v, allowed)}allowed: {', '.join(allowed)}")
    if not 0.0 <= values.get("dropout", 0.1) < 1.0 or not 0.0 <= values.get("reached_proportion", 0.0) <= 1.0:
        raise ConfigError(file, f"{where}.dropout/reached_proportion", "must lie in [0, 1)")
    return Settings(**values)
