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
from dataclasses import dataclass, field, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

from .augment import DEFAULT_KWARGS as AUGMENT_DEFAULTS
from .augment import check_kwargs as check_augment_kwargs
from .errors import ConfigError


class _Spelled(enum.StrEnum):
    """An enum whose values are the YAML spellings: str() and repr() give the spelling, so a message written
    with {value!r} reads encoder 'tiny', as it did when these were plain strings."""

    def __repr__(self) -> str:
        return repr(self.value)


class Algo(_Spelled):
    """The agents (agents.py); the values are the YAML spellings."""

    BC = "bc"
    GC_BC = "gc_bc"
    GC_DDPM_BC = "gc_ddpm_bc"
    LC_BC = "lc_bc"
    """Language-conditioned: needs a FiLM encoder and language (trainer/language.py)."""


class GoalRelabeling(_Spelled):
    """How data.add_goals picks a goal for each step."""

    UNIFORM = "uniform"
    LAST_STATE_UPWEIGHTED = "last_state_upweighted"
    GEOMETRIC = "geometric"
    """Needs goal_relabeling_kwargs.discount."""
    DELTA_GOALS = "delta_goals"
    """Needs goal_relabeling_kwargs.goal_delta; no reached_proportion."""


class EncoderName(_Spelled):
    """The image encoders (networks.make_encoder)."""

    RESNET_V1_34_BRIDGE = "resnetv1-34-bridge"
    RESNET_V1_18_BRIDGE = "resnetv1-18-bridge"
    """(2, 2, 2, 2) stages, as the original's resnetv1-18-bridge (reads its checkpoints)."""
    TINY = "tiny"
    """For tests and the CPU demo."""
    RESNET_V1_34_BRIDGE_FILM = "resnetv1-34-bridge-film"
    """FiLM-conditioned on the language embedding (lc_bc)."""
    TINY_FILM = "tiny-film"
    """tiny with FiLM, for lc_bc tests and demos."""


ALGOS = tuple(a.value for a in Algo)
ENCODERS = tuple(e.value for e in EncoderName)
GOAL_RELABELING = tuple(g.value for g in GoalRelabeling)
PLATFORMS = ("cpu", "gpu", "cuda", "rocm", "tpu")
# JAX_PLATFORMS names the CUDA backend "cuda"; the fork's jax_platform_name used "gpu".
PLATFORM_ALIASES = {"gpu": "cuda"}
ALGO_DECAY_KEY = {Algo.BC: "decay_steps_bc", Algo.GC_BC: "decay_steps_gc_bc",
                  Algo.GC_DDPM_BC: "actor_decay_steps_gc_ddpm_bc", Algo.LC_BC: "decay_steps_lc_bc"}


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
    keep_checkpoints: int | None = 3
    """Checkpoints kept (the newest); ``all`` (or null): every one."""
    init_from: str | None = None
    """Start from these parameters (a run directory, one of its step directories, or a `bdv2 checkpoint import`
    directory) at step 0 with a fresh optimiser (init_from.py)."""
    seed: int = 42
    learning_rate: float = 3e-4
    warmup_steps: int = 2000
    decay_steps: int | None = None
    """Total schedule length (warmup included); default: the algorithm's key below."""
    decay_steps_bc: int = 1_000_000
    decay_steps_gc_bc: int = 1_000_000
    actor_decay_steps_gc_ddpm_bc: int = 1_000_000
    decay_steps_lc_bc: int = 2_000_000
    encoder: EncoderName = EncoderName.RESNET_V1_34_BRIDGE
    hidden_dims: tuple[int, ...] = (256, 256, 256)
    dropout: float = 0.1
    use_proprio: bool = False
    diffusion_steps: int = 20
    obs_horizon: int | None = None
    """Frames of history per sample; gc_ddpm_bc defaults to 1."""
    act_pred_horizon: int | None = None
    """Actions predicted per sample; gc_ddpm_bc defaults to 1."""
    metadata: str | None = None
    """Normalisation statistics (`bdv2 data stats`); default <data_root>/metadata.json. ``bridge_v2``: the
    original's published statistics (tasks.BRIDGE_V2_METADATA)."""
    relabel_actions: bool = True
    goal_relabeling: GoalRelabeling = GoalRelabeling.UNIFORM
    reached_proportion: float = 0.0
    load_language: bool | None = None
    """Carry each trajectory's instruction as goals/language; default: true for lc_bc only."""
    skip_unlabeled: bool | None = None
    """Drop trajectories without an instruction; default: true for lc_bc only (the original's lc_bc config)."""
    text_encoder: str | None = None
    """Embeds instruction text (trainer/language.py): a local TF SavedModel directory (e.g. MUSE) or
    sentence-transformers:<model>; unset: the embeddings stored in an RLDS release (language_embedding)."""
    goal_relabeling_kwargs: dict[str, Any] = field(default_factory=dict)
    """The strategy's own arguments (GOAL_RELABELING_KWARGS); reached_proportion is also accepted here, as the
    original spells it, and moves to the key above."""
    augment: bool = True
    augment_kwargs: dict[str, Any] = field(default_factory=lambda: _default_augment_kwargs())
    """The original's augment_kwargs (ops, their ranges, augment_order); default (also for null): its defaults
    (augment.DEFAULT_KWARGS), checked like a user's, so a run's run.json and config.json record what ran."""
    augment_next_obs_goal_differently: bool = False
    shuffle_buffer_size: int = 25000
    cuda_visible_devices: str | None = None
    xla_flags: str | None = None
    use_pip_cuda_libs: bool = True
    jax_platform_name: str | None = None
    wandb_project: str | None = None
    """W&B project; unset: no W&B. Offline when no credentials are found."""
    name_format: str = "{algo}_{task}"


def _default_augment_kwargs() -> dict[str, Any]:
    return check_augment_kwargs(AUGMENT_DEFAULTS, "augment.DEFAULT_KWARGS", "augment_kwargs")


SETTING_KEYS = tuple(f.name for f in fields(Settings))
POSITIVE = ("train_batch_size", "val_batch_size", "num_steps", "eval_interval", "save_interval", "log_interval",
            "keep_checkpoints", "diffusion_steps", "obs_horizon", "act_pred_horizon", "shuffle_buffer_size",
            "decay_steps", "decay_steps_bc", "decay_steps_gc_bc", "actor_decay_steps_gc_ddpm_bc", "decay_steps_lc_bc")
CHOICES: dict[str, tuple[str, ...]] = {"jax_platform_name": PLATFORMS}
"""Allowed values of the plain-string settings; the enum-typed ones (encoder, goal_relabeling) are checked
against their enum when coerced."""


GOAL_RELABELING_KWARGS: dict[str, tuple[str, ...]] = {
    "uniform": ("reached_proportion",), "last_state_upweighted": ("reached_proportion",),
    "geometric": ("reached_proportion", "discount"), "delta_goals": ("goal_delta",)}
"""The keyword arguments of the original's relabeling functions (jaxrl_m/data/tf_goal_relabeling.py)."""
GOAL_RELABELING_REQUIRED = {"geometric": ("discount", "discount: 0.95"),
                            "delta_goals": ("goal_delta", "goal_delta: [1, 10]  (goals from steps i+1 .. i+9)")}


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
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "str"
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
        if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9.]+e[-+]?[0-9]+", value):
            raise ConfigError(file, key, f"got the text {value!r}: YAML 1.1 reads a number without a dot before "
                              "its exponent as a string", f"write {float(value):.1e}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        if not isinstance(value, str):
            raise bad
        allowed = tuple(str(m.value) for m in hint)
        if value not in allowed:
            raise ConfigError(file, key, f"unknown value {value!r}",
                              f"{did_you_mean(value, allowed)}allowed: {', '.join(allowed)}")
        return hint(value)
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
    if origin is dict:
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    raise TypeError(f"unsupported setting type {hint!r}")  # an internal invariant: Settings uses the above only


def build_settings(data: Mapping[str, Any], file: str, where: str) -> Settings:
    """Settings from a mapping, checking every key and type (the data_root/save_dir requirement included)."""
    check_keys(data, SETTING_KEYS, file, where)
    for required in ("data_root", "save_dir"):
        if data.get(required) in (None, ""):
            raise ConfigError(file, f"{where}.{required}", "missing", "add it to the global: block")
    hints = get_type_hints(Settings)
    if data.get("keep_checkpoints") == "all":
        data = {**data, "keep_checkpoints": None}
    if "augment_kwargs" in data and data["augment_kwargs"] is None:  # null: the defaults
        data = {k: v for k, v in data.items() if k != "augment_kwargs"}
    values = {k: _coerce(v, hints[k], file, f"{where}.{k}") for k, v in data.items()
              if k != "goal_relabeling_kwargs"}
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
    if "augment_kwargs" in values:
        values["augment_kwargs"] = check_augment_kwargs(values["augment_kwargs"], file, f"{where}.augment_kwargs")
    _goal_relabeling_kwargs(data, values, file, where)
    return Settings(**values)


def _goal_relabeling_kwargs(data: Mapping[str, Any], values: dict[str, Any], file: str, where: str) -> None:
    """Check goal_relabeling_kwargs against the strategy's arguments and store the result in ``values``."""
    key = f"{where}.goal_relabeling_kwargs"
    raw = data.get("goal_relabeling_kwargs")
    raw = {} if raw is None else raw
    strategy = values.get("goal_relabeling", GoalRelabeling.UNIFORM)
    allowed = GOAL_RELABELING_KWARGS[strategy]
    if not isinstance(raw, Mapping):
        raise ConfigError(file, key, f"expected a mapping of keyword arguments, got {type(raw).__name__} {raw!r}",
                          f"goal_relabeling {strategy.value!r} takes: {', '.join(allowed)}")
    for k in raw:
        if k not in allowed:
            raise ConfigError(file, f"{key}.{k}", f"not an argument of goal_relabeling {strategy.value!r}",
                              f"{did_you_mean(str(k), allowed)}it takes: {', '.join(allowed)}")
    required, example = GOAL_RELABELING_REQUIRED.get(strategy, ("", ""))
    if required and required not in raw:
        raise ConfigError(file, f"{key}.{required}", f"missing: goal_relabeling {strategy.value!r} needs it",
                          f"e.g. goal_relabeling_kwargs: {{{example}}}")
    out: dict[str, Any] = {}
    if "discount" in raw:
        out["discount"] = _coerce(raw["discount"], float, file, f"{key}.discount")
        if not 0.0 < out["discount"] <= 1.0:
            raise ConfigError(file, f"{key}.discount", f"must lie in (0, 1], got {out['discount']}")
    if "goal_delta" in raw:
        delta = _coerce(raw["goal_delta"], tuple[int, ...], file, f"{key}.goal_delta")
        if len(delta) != 2 or not 0 <= delta[0] < delta[1]:
            raise ConfigError(file, f"{key}.goal_delta", f"expected [low, high] with 0 <= low < high, got {delta}",
                              "goals are drawn from steps i + low .. i + high - 1")
        out["goal_delta"] = delta
    if "reached_proportion" in raw:
        p = _coerce(raw["reached_proportion"], float, file, f"{key}.reached_proportion")
        if "reached_proportion" in data and values["reached_proportion"] != p:
            raise ConfigError(file, f"{key}.reached_proportion", f"{p} disagrees with {where}.reached_proportion "
                              f"{values['reached_proportion']}", "give it in one place")
        if not 0.0 <= p <= 1.0:
            raise ConfigError(file, f"{key}.reached_proportion", f"must lie in [0, 1], got {p}")
        values["reached_proportion"] = p
    if strategy == GoalRelabeling.DELTA_GOALS and values.get("reached_proportion", 0.0) != 0.0:
        raise ConfigError(file, f"{where}.reached_proportion", "goal_relabeling 'delta_goals' has no reached "
                          "proportion (as the original's delta_goals)", "remove it or set it to 0")
    values["goal_relabeling_kwargs"] = out
