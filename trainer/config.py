"""multi_train.yaml -> validated, frozen run configs, before anything runs.

The file is the user's format (the GABRIL fork's ``multi_train.yaml``)::

    global:   settings shared by every run (data_root, save_dir, batch sizes, steps, intervals, env keys, ...)
    tasks:    optional task definitions: include/exclude globs under data_root, sample weights, metadata file
    matrix:   {algos: [...], tasks: [...]}  -> every algo x task, algo-major (the fork's order)
    runs:     explicit list of {algo, task, name?, config_overrides?}; when given, matrix is ignored (as the fork)

This module is the pure part: YAML loading and the expansion into runs (model.py holds the run dataclasses).
The settings' keys and types are in settings.py; what touches the data directories (a task's files, RLDS
directories, its metadata) is tasks.py, which `expand` calls through its ``resolve`` argument.
Every problem is a ``ConfigError`` naming the file, the key, what was found and what is allowed; the whole
file is checked before the first run starts, so a typo in run 7 cannot waste runs 1-6.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from bdv2.devices import DeviceView

from . import batching
from .errors import ConfigError
from .jaxrl_m_map import HOSTED_ENCODERS
from .model import Experiments, Run, Task
from .settings import (
    ALGO_DECAY_KEY,
    ALGOS,
    SETTING_KEYS,
    Algo,
    EncoderName,
    Settings,
    build_settings,
    check_keys,
    did_you_mean,
)
from .tasks import resolve_task

__all__ = ["CLI", "TaskResolver", "check_batch_sizes", "expand", "load", "load_yaml", "only", "parse_set",
           "setting_name"]

TOP_KEYS = ("global", "tasks", "matrix", "runs")
RUN_KEYS = ("algo", "task", "name", "config_overrides", "bridgedata_overrides")
TASK_KEYS = ("include", "exclude", "sample_weights", "metadata")
# The fork's flag names for the few settings its runs override most, so its config_overrides keep working.
FORK_NAMES = {
    "config.batch_size": "train_batch_size", "config.val_batch_size": "val_batch_size",
    "config.num_steps": "num_steps", "config.eval_interval": "eval_interval", "config.save_interval": "save_interval",
    "config.log_interval": "log_interval", "config.eval_batches": "eval_batches", "config.seed": "seed",
    "config.encoder": "encoder", "config.agent_kwargs.warmup_steps": "warmup_steps",
    "config.agent_kwargs.decay_steps": "decay_steps", "config.agent_kwargs.actor_decay_steps": "decay_steps",
    "config.agent_kwargs.learning_rate": "learning_rate", "config.agent_kwargs.use_proprio": "use_proprio",
    "config.dataset_kwargs.augment": "augment", "config.dataset_kwargs.obs_horizon": "obs_horizon",
    "config.dataset_kwargs.act_pred_horizon": "act_pred_horizon",
    "config.dataset_kwargs.goal_relabeling_strategy": "goal_relabeling",
    "config.dataset_kwargs.goal_relabeling_kwargs": "goal_relabeling_kwargs",
}
# Short names users type for the most common settings (on the command line, in overrides and sweeps); the first
# is also the label of a swept setting in run names.
ALIASES = {"lr": "learning_rate", "batch_size": "train_batch_size", "steps": "num_steps"}
LABELS = {v: k for k, v in ALIASES.items()}
CLI = "command line"
"""The "file" of a ConfigError about a --set option."""
MATRIX_AXES = ("algos", "tasks")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def setting_name(key: str) -> str | None:
    """The Settings field a user's key means: the field itself, an alias (lr), or the fork's flag name
    (config.agent_kwargs.learning_rate, bridgedata_config.X); None when it means none."""
    name = FORK_NAMES.get(key) or ALIASES.get(key) or key.removeprefix("bridgedata_config.")
    return name if name in SETTING_KEYS else None


def _unknown_setting(file: str, key: str, given: str, allowed: str = "") -> ConfigError:
    return ConfigError(file, key, "unknown setting",
                       f"{did_you_mean(given, [*SETTING_KEYS, *ALIASES])}allowed: "
                       f"{allowed}the global: keys ({', '.join(SETTING_KEYS)}), or lr, batch_size, steps")


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options -> {setting: value}, checked like the YAML's keys and values (a value is
    read as YAML, and 3e-4 as a number, which YAML 1.1 would read as text).

    Raises:
        ConfigError: not KEY=VALUE, an unknown key (with a suggestion), a value of the wrong type.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(CLI, f"--set {item}", "expected KEY=VALUE",
                              "e.g. --set learning_rate=3e-4 --set encoder=resnetv1-18-bridge")
        name = setting_name(key)
        if name is None:
            raise _unknown_setting(CLI, f"--set {key}", key)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(CLI, f"--set {key}", f"cannot read {text!r} as a YAML value ({e})") from None
        if isinstance(value, str) and _NUMBER.fullmatch(value):
            value = float(value)
        out[name] = value
    if out:  # types, ranges and choices of the values alone (the run's other settings are checked in expand)
        try:
            build_settings({"data_root": "-", "save_dir": "-", **out}, CLI, "--set")
        except ConfigError as e:
            raise ConfigError(CLI, e.key.replace("--set.", "--set ", 1), e.problem, e.fix) from None
    return out


# -- YAML loading --------------------------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """SafeLoader (no object tags) that rejects duplicate keys: PyYAML silently keeps the last one."""

    file = "<config>"


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(loader.file, str(key), f"duplicate key at line {line} (first at line {seen[key]}); "
                              "PyYAML would silently keep the last value", "keep one of them")
        seen[key] = line
    return dict(loader.construct_pairs(node, deep=deep))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping safely, rejecting duplicate keys.

    Raises:
        ConfigError: unreadable file, YAML syntax error, a duplicate key, or not a mapping at the top.
    """
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e.strerror}") from e
    loader = _StrictLoader(text)
    loader.file = str(path)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        raise ConfigError(str(path), "", f"not valid YAML: {e}") from e
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", f"expected a mapping with {', '.join(TOP_KEYS)}, got {type(data).__name__}")
    return data


# -- batch sizes before launch --------------------------------------------------------------------

def check_batch_sizes(s: Settings, file: str, where: str, devices: int | None) -> None:
    """Both batch sizes split evenly over ``devices`` (None: unknown, not checked)."""
    if devices is None:
        return
    batching.check_divisible(batching.batch_sizes(s), devices, file, where, context="this run will see")


# -- expansion -----------------------------------------------------------------------------------

def _overrides(run: Mapping[str, Any], file: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in ("config_overrides", "bridgedata_overrides"):
        data = run.get(block) or {}
        if not isinstance(data, dict):
            raise ConfigError(file, f"{where}.{block}", f"expected a mapping of settings, got {data!r}")
        for k, v in data.items():
            name = setting_name(str(k))
            if name is None:
                raise _unknown_setting(file, f"{where}.{block}.{k}", str(k))
            out[name] = v
    return out


def _run_list(data: Mapping[str, Any], file: str) -> tuple[list[dict[str, Any]], list[str]]:
    notes = []
    runs = data.get("runs")
    if runs:
        if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
            raise ConfigError(file, "runs", "expected a list of mappings with algo and task")
        if data.get("matrix"):
            notes.append("matrix: ignored because runs: is given (as the fork's launcher does)")
        for i, r in enumerate(runs):
            check_keys(r, RUN_KEYS, file, f"runs[{i}]")
            for k in ("algo", "task"):
                if not isinstance(r.get(k), str):
                    raise ConfigError(file, f"runs[{i}].{k}", f"missing or not a string: {r.get(k)!r}")
        return [dict(r, _where=f"runs[{i}]") for i, r in enumerate(runs)], notes
    matrix = data.get("matrix")
    if not isinstance(matrix, dict):
        raise ConfigError(file, "matrix", "need either matrix: {algos: [...], tasks: [...]} or a runs: list")
    for k in MATRIX_AXES:
        v = matrix.get(k)
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise ConfigError(file, f"matrix.{k}", f"expected a non-empty list of names, got {v!r}")
    sweeps = _sweeps(matrix, file)
    axes = [[(name, idx, value) for idx, value in enumerate(values)] for name, values in sweeps.items()]
    out = []
    for (i, a), (j, t) in itertools.product(enumerate(matrix["algos"]), enumerate(matrix["tasks"])):
        for combo in itertools.product(*axes):
            out.append({"algo": a, "task": t, "_where": f"matrix.algos[{i}]", "_task_where": f"matrix.tasks[{j}]",
                        "_sweep": {name: value for name, _, value in combo}})
    return out, notes


def _sweeps(matrix: Mapping[str, Any], file: str) -> dict[str, list[Any]]:
    """matrix: keys beyond algos and tasks: settings to sweep, each a non-empty list of values (every value
    checked alone here, with the run's other settings in _run_settings)."""
    sweeps: dict[str, list[Any]] = {}
    for k, values in matrix.items():
        if k in MATRIX_AXES:
            continue
        name = setting_name(str(k))
        if name is None:
            raise _unknown_setting(file, f"matrix.{k}", str(k), "algos, tasks, or a setting to sweep: ")
        if not isinstance(values, list) or not values:
            raise ConfigError(file, f"matrix.{k}", f"expected a non-empty list of values to sweep, got {values!r}",
                              f"e.g. {k}: [3.0e-4, 1.0e-3]")
        for value in values:
            build_settings({"data_root": "-", "save_dir": "-", name: value}, file, "matrix")
        sweeps[name] = values
    return sweeps


TaskResolver = Callable[[str, Mapping[str, Any] | None, Settings, str, str], Task]
"""(task name, its ``tasks:`` definition, the run's settings, file, key) -> the resolved Task."""


def _check_top(data: Mapping[str, Any], file: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``global:`` block and the ``tasks:`` definitions, each checked alone."""
    check_keys(data, TOP_KEYS, file, "")
    glob = data.get("global")
    if not isinstance(glob, dict) or not glob:
        raise ConfigError(file, "global", "missing or empty", "add a global: block with data_root and save_dir")
    build_settings(glob, file, "global")  # the global block alone must be valid, even if every run overrides it
    tasks = data.get("tasks") or {}
    if not isinstance(tasks, dict):
        raise ConfigError(file, "tasks", "expected a mapping of task name -> {include, exclude, ...}")
    for name, spec in tasks.items():
        if not isinstance(spec, dict):
            raise ConfigError(file, f"tasks.{name}", f"expected a mapping with {', '.join(TASK_KEYS)}")
        check_keys(spec, TASK_KEYS, file, f"tasks.{name}")
    return glob, tasks


def _run_settings(r: Mapping[str, Any], glob: Mapping[str, Any], file: str, devices: int | None,
                  view: DeviceView | None, cli: Mapping[str, Any]) -> tuple[Settings, dict[str, str]]:
    """One run's settings and where each came from (ORIGINS): the global block, the matrix's sweep, the run's
    overrides, the command line's --set, in that order of precedence, then the algorithm's defaults; batch
    sizes checked."""
    where = r["_where"]
    if r["algo"] not in ALGOS:
        raise ConfigError(file, where if "matrix" in where else f"{where}.algo", f"unknown algorithm {r['algo']!r}",
                          f"{did_you_mean(r['algo'], ALGOS)}allowed: {', '.join(ALGOS)}")
    over = _overrides(r, file, where)
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for origin, block in (("global", glob), ("matrix", r.get("_sweep", {})), ("run", over), ("--set", cli)):
        merged.update(block)
        origins.update(dict.fromkeys(block, origin))
    s = build_settings(merged, file, where if over or r.get("_sweep") else "global")
    origins = {k: origins.get(k, "default") for k in SETTING_KEYS}
    if Algo(r["algo"]) is Algo.GC_DDPM_BC:  # the diffusion policy needs a time axis on observations and actions
        for k in ("obs_horizon", "act_pred_horizon"):
            if getattr(s, k) is None:
                origins[k] = "algorithm default"
        s = dataclasses.replace(s, obs_horizon=s.obs_horizon or 1, act_pred_horizon=s.act_pred_horizon or 1)
    s = _resolved_defaults(Algo(r["algo"]), s, origins)
    _check_film(Algo(r["algo"]), s.encoder, file, where if over else "global")
    _check_wandb(s, file, where if "wandb_project" in over else "global")
    if devices is not None:
        check_batch_sizes(s, file, where if over else "global", devices)
    else:
        batching.check_devices(s, file, where if over else "global", view or DeviceView())
    return s, origins


def _resolved_defaults(algo: Algo, s: Settings, origins: dict[str, str]) -> Settings:
    """The settings whose default depends on others, filled in here so that run.json and config.json record
    what ran: the validation batch (the training batch), the decay (the algorithm's own decay key, as the
    original's configs), and language loading (on for lc_bc only)."""
    lc = algo is Algo.LC_BC
    derived: dict[str, tuple[Any, str]] = {
        "val_batch_size": (s.train_batch_size, "default"),
        "decay_steps": (int(getattr(s, ALGO_DECAY_KEY[algo])), "algorithm default"),
        "load_language": (lc, "algorithm default"),
        "skip_unlabeled": (lc, "algorithm default"),
    }
    fill = {k: value for k, (value, _) in derived.items() if getattr(s, k) is None}
    origins.update({k: derived[k][1] for k in fill})
    return dataclasses.replace(s, **fill)


def _key_of(name: str, origins: Mapping[str, str], where: str) -> str:
    """The key a message names for setting ``name``: where its value was given."""
    match origins.get(name, "default"):
        case "global":
            return f"global.{name}"
        case "--set":
            return f"--set {name}"
        case "run" | "matrix":
            return f"{where}.{name}"
        case _:
            return f"{name} (default)"


def check_schedule(run: Run, origins: Mapping[str, str], where: str) -> list[str]:
    """The learning-rate schedule against num_steps (warmup then cosine decay to 0 over decay_steps, warmup
    included; loop.make_schedule). A warmup longer than the run never reaches learning_rate, and a decay
    shorter than the warmup has no decay: both are refused. A decay that ends before the last step (the rest
    trains at 0) or after it (cut short) is a note.

    Raises:
        ConfigError: naming both numbers and what to set.
    """
    s, file = run.settings, run.config_file
    warmup, total, decay = s.warmup_steps, s.num_steps, run.decay_steps
    # a decay filled in from the algorithm's own key is named by that key, the one to set
    decay_key = ALGO_DECAY_KEY[run.algo] if origins.get("decay_steps") == "algorithm default" else "decay_steps"
    if warmup > total:
        raise ConfigError(file, _key_of("warmup_steps", origins, where),
                          f"{warmup:,} steps of warmup is longer than num_steps {total:,}: the learning rate would "
                          f"reach only {total / warmup:.0%} of learning_rate {s.learning_rate:g} "
                          f"({s.learning_rate * total / warmup:.2g}) at the last step",
                          f"set warmup_steps to at most num_steps (a tenth of the run: {max(1, total // 10):,}), "
                          f"or raise num_steps to more than {warmup:,}")
    if decay <= warmup:
        raise ConfigError(file, _key_of(decay_key, origins, where),
                          f"{decay_key} {decay:,} ends before warmup_steps {warmup:,} does: the schedule has no "
                          "decay", f"set {decay_key} to num_steps ({total:,}) to decay over the whole run")
    if decay < total:
        return [f"{run.name}: the learning rate decays to 0 at step {decay:,} ({decay_key}) and the last "
                f"{total - decay:,} of num_steps {total:,} train at 0; set {decay_key}: {total} to decay over the "
                "whole run"]
    return []


def _check_film(algo: Algo, encoder: EncoderName, file: str, where: str) -> None:
    """A FiLM encoder exactly when the agent has language to condition it on (lc_bc), caught at --dry-run."""
    film = {EncoderName.RESNET_V1_34_BRIDGE_FILM, EncoderName.TINY_FILM}
    if (algo is Algo.LC_BC) != (encoder in film):
        need = " or ".join(sorted(film)) if algo is Algo.LC_BC else "an encoder without FiLM (e.g. resnetv1-34-bridge)"
        raise ConfigError(file, f"{where}.encoder", f"{algo.value} cannot use encoder {encoder.value!r}",
                          f"use {need}: FiLM layers condition the image encoder on lc_bc's language embedding")


def _check_wandb(s: Settings, file: str, where: str) -> None:
    """wandb_project set: wandb must be importable by the runs' interpreter (this one), or the runs would train
    without it and say so only in their last line."""
    if s.wandb_project and importlib.util.find_spec("wandb") is None:
        raise ConfigError(file, f"{where}.wandb_project", f"{s.wandb_project!r} is set but wandb is not installed "
                          f"for {sys.executable}",
                          "`pip install wandb` (without credentials it logs offline; `wandb sync` uploads later), "
                          "or remove wandb_project: metrics.jsonl and TensorBoard files are written either way")


def _check_unique_names(runs: Sequence[Run], raw_runs: Sequence[Mapping[str, Any]], file: str) -> None:
    seen: dict[str, str] = {}
    for run, r in zip(runs, raw_runs, strict=True):
        if run.name in seen:
            raise ConfigError(file, r["_where"], f"run name {run.name!r} is used twice (also {seen[run.name]}); "
                              "both would write to the same directory", "give one of them a name:")
        seen[run.name] = r["_where"]


def expand(data: Mapping[str, Any], file: str, devices: int | None = None,
           resolve: TaskResolver | None = None, view: DeviceView | None = None,
           cli: Mapping[str, Any] | None = None) -> Experiments:
    """Validate a loaded multi_train.yaml and expand it into runs.

    Args:
        devices: the device count to check batch sizes against; default: the devices each run's children will
            see (batching.check_devices with ``view``: the launcher's environment, the driver's GPUs, --parallel;
            without it, the settings' env keys alone).
        resolve: finds each task's data; default: tasks.resolve_task (the data directories on disk).
        cli: settings from the command line (parse_set), over every run's own.

    Raises:
        ConfigError: the first problem found, naming the key.
    """
    resolve = resolve or resolve_task
    glob, tasks = _check_top(data, file)
    raw_runs, notes = _run_list(data, file)
    swept = set(raw_runs[0].get("_sweep", {})) if raw_runs else set()
    for k in sorted(swept & set(cli or {})):
        raise ConfigError(CLI, f"--set {k}", f"the matrix of {file} sweeps {k}: one value for every run would "
                          "make the sweep's runs the same", f"remove {k} from the matrix or from the command line")
    resolved: dict[str, Task] = {}
    runs: list[Run] = []
    for r in raw_runs:
        s, origins = _run_settings(r, glob, file, devices, view, cli or {})
        task_key = r.get("_task_where", f"{r['_where']}.task")
        cache_key = repr((r["task"], s.data_root, s.metadata))
        if cache_key not in resolved:
            resolved[cache_key] = resolve(r["task"], tasks.get(r["task"]), s, file, task_key)
        name = r.get("name") or _format_name(s.name_format, r["algo"], r["task"], file, r.get("_sweep", {}))
        run = Run(name, Algo(r["algo"]), resolved[cache_key], s, file, origins=origins)
        notes.extend(check_schedule(run, origins, r["_where"]))
        runs.append(run)
    _check_unique_names(runs, raw_runs, file)
    notes.extend(_export_notes(runs))
    return Experiments(file, tuple(runs), tuple(notes))


def _export_notes(runs: Sequence[Run]) -> list[str]:
    """Said before training: runs whose encoder the original code does not have cannot be exported to it."""
    by_encoder: dict[EncoderName, list[str]] = {}
    for run in runs:
        if run.settings.encoder not in HOSTED_ENCODERS:
            by_encoder.setdefault(run.settings.encoder, []).append(run.name)
    return [f"encoder {enc!r} ({', '.join(names)}) has no counterpart in the original BridgeData V2 code: "
            f"`bdv2 checkpoint export --to jaxrl_m` will refuse these runs (bdv2 eval and load_policy work); "
            f"train with {' or '.join(HOSTED_ENCODERS)} for runs to export" for enc, names in by_encoder.items()]


def _value_label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "-".join(_value_label(v) for v in value)
    return str(value)


def _format_name(fmt: str, algo: str, task: str, file: str, sweep: Mapping[str, Any]) -> str:
    """The run's name from name_format; a swept setting the format does not name is appended as
    _<label><value> (learning_rate 3e-4 -> _lr0.0003, seed 1 -> _seed1), so every run of a sweep has its own."""
    labels = {k: _value_label(v) for k, v in sweep.items()}
    try:
        name = fmt.format(algo=algo, task=task, **labels)
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(file, "global.name_format", f"{fmt!r} cannot be formatted ({e})",
                          "use {algo}, {task} and the matrix's swept settings") from e
    name += "".join(f"_{LABELS.get(k, k)}{v}" for k, v in labels.items() if "{" + k + "}" not in fmt)
    return name.replace("/", "-")


def load(path: Path, overrides: Mapping[str, Any] | None = None, devices: int | None = None,
         view: DeviceView | None = None, cli: Mapping[str, Any] | None = None) -> Experiments:
    """Load, validate and expand a multi_train.yaml; ``overrides`` replace ``global:`` keys (the demo's paths),
    ``cli`` (parse_set's --set values) replace every run's settings. Nothing is written: a file refused here
    leaves no run directory."""
    data = load_yaml(path)
    if overrides:
        glob = data.get("global")
        data = {**data, "global": {**(glob if isinstance(glob, dict) else {}), **overrides}}
    return expand(data, str(path), devices, view=view, cli=cli)


def only(exp: Experiments, names: Sequence[str]) -> Experiments:
    """Keep the runs named in ``names`` (the --only option); unknown names are an error with a suggestion."""
    if not names:
        return exp
    known = [r.name for r in exp.runs]
    for n in names:
        if n not in known:
            raise ConfigError(exp.file, "--only", f"no run named {n!r}",
                              f"{did_you_mean(n, known)}runs: {', '.join(known)}")
    return dataclasses.replace(exp, runs=tuple(r for r in exp.runs if r.name in names))
