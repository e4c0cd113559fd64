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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from bdv2.devices import DeviceView

from . import batching
from .errors import ConfigError
from .model import Experiments, Run, Task
from .settings import (
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

__all__ = ["TaskResolver", "check_batch_sizes", "expand", "load", "load_yaml", "only"]

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
            name = FORK_NAMES.get(k, k.removeprefix("bridgedata_config."))
            if name not in SETTING_KEYS:
                raise ConfigError(file, f"{where}.{block}.{k}", "unknown setting",
                                  f"{did_you_mean(name, SETTING_KEYS)}allowed: the global: keys "
                                  f"({', '.join(SETTING_KEYS)})")
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
    check_keys(matrix, ("algos", "tasks"), file, "matrix")
    for k in ("algos", "tasks"):
        v = matrix.get(k)
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise ConfigError(file, f"matrix.{k}", f"expected a non-empty list of names, got {v!r}")
    out = [{"algo": a, "task": t, "_where": f"matrix.algos[{i}]", "_task_where": f"matrix.tasks[{j}]"}
           for i, a in enumerate(matrix["algos"]) for j, t in enumerate(matrix["tasks"])]
    return out, notes


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
                  view: DeviceView | None) -> Settings:
    """One run's settings: the global block, its overrides, the algorithm's defaults; batch sizes checked."""
    where = r["_where"]
    if r["algo"] not in ALGOS:
        raise ConfigError(file, where if "matrix" in where else f"{where}.algo", f"unknown algorithm {r['algo']!r}",
                          f"{did_you_mean(r['algo'], ALGOS)}allowed: {', '.join(ALGOS)}")
    over = _overrides(r, file, where)
    s = build_settings({**glob, **over}, file, where if over else "global")
    if Algo(r["algo"]) is Algo.GC_DDPM_BC:  # the diffusion policy needs a time axis on observations and actions
        s = dataclasses.replace(s, obs_horizon=s.obs_horizon or 1, act_pred_horizon=s.act_pred_horizon or 1)
    _check_film(Algo(r["algo"]), s.encoder, file, where if over else "global")
    if devices is not None:
        check_batch_sizes(s, file, where if over else "global", devices)
    else:
        batching.check_devices(s, file, where if over else "global", view or DeviceView())
    return s


def _check_film(algo: Algo, encoder: EncoderName, file: str, where: str) -> None:
    """A FiLM encoder exactly when the agent has language to condition it on (lc_bc), caught at --dry-run."""
    film = {EncoderName.RESNET_V1_34_BRIDGE_FILM, EncoderName.TINY_FILM}
    if (algo is Algo.LC_BC) != (encoder in film):
        need = " or ".join(sorted(film)) if algo is Algo.LC_BC else "an encoder without FiLM (e.g. resnetv1-34-bridge)"
        raise ConfigError(file, f"{where}.encoder", f"{algo.value} cannot use encoder {encoder.value!r}",
                          f"use {need}: FiLM layers condition the image encoder on lc_bc's language embedding")


def _check_unique_names(runs: Sequence[Run], raw_runs: Sequence[Mapping[str, Any]], file: str) -> None:
    seen: dict[str, str] = {}
    for run, r in zip(runs, raw_runs, strict=True):
        if run.name in seen:
            raise ConfigError(file, r["_where"], f"run name {run.name!r} is used twice (also {seen[run.name]}); "
                              "both would write to the same directory", "give one of them a name:")
        seen[run.name] = r["_where"]


def expand(data: Mapping[str, Any], file: str, devices: int | None = None,
           resolve: TaskResolver | None = None, view: DeviceView | None = None) -> Experiments:
    """Validate a loaded multi_train.yaml and expand it into runs.

    Args:
        devices: the device count to check batch sizes against; default: the devices each run's children will
            see (batching.check_devices with ``view``: the launcher's environment, the driver's GPUs, --parallel;
            without it, the settings' env keys alone).
        resolve: finds each task's data; default: tasks.resolve_task (the data directories on disk).

    Raises:
        ConfigError: the first problem found, naming the key.
    """
    resolve = resolve or resolve_task
    glob, tasks = _check_top(data, file)
    raw_runs, notes = _run_list(data, file)
    resolved: dict[str, Task] = {}
    runs: list[Run] = []
    for r in raw_runs:
        s = _run_settings(r, glob, file, devices, view)
        task_key = r.get("_task_where", f"{r['_where']}.task")
        cache_key = repr((r["task"], s.data_root, s.metadata))
        if cache_key not in resolved:
            resolved[cache_key] = resolve(r["task"], tasks.get(r["task"]), s, file, task_key)
        name = r.get("name") or _format_name(s.name_format, r["algo"], r["task"], file, r["_where"])
        runs.append(Run(name, Algo(r["algo"]), resolved[cache_key], s, file))
    _check_unique_names(runs, raw_runs, file)
    return Experiments(file, tuple(runs), tuple(notes))


def _format_name(fmt: str, algo: str, task: str, file: str, where: str) -> str:
    try:
        name = fmt.format(algo=algo, task=task)
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(file, "global.name_format", f"{fmt!r} cannot be formatted ({e})",
                          "use only {algo} and {task}") from e
    return name.replace("/", "-")


def load(path: Path, overrides: Mapping[str, Any] | None = None, devices: int | None = None,
         view: DeviceView | None = None) -> Experiments:
    """Load, validate and expand a multi_train.yaml; ``overrides`` replace ``global:`` keys (the demo's paths).
    Nothing is written: a file refused here leaves no run directory."""
    data = load_yaml(path)
    if overrides:
        glob = data.get("global")
        data = {**data, "global": {**(glob if isinstance(glob, dict) else {}), **overrides}}
    return expand(data, str(path), devices, view=view)


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
