"""multi_train.yaml -> validated, frozen run configs, before anything runs.

The file is the user's format (the GABRIL fork's ``multi_train.yaml``)::

    global:   settings shared by every run (data_root, save_dir, batch sizes, steps, intervals, env keys, ...)
    tasks:    optional task definitions: include/exclude globs under data_root, sample weights, metadata file
    matrix:   {algos: [...], tasks: [...]}  -> every algo x task, algo-major (the fork's order)
    runs:     explicit list of {algo, task, name?, config_overrides?}; when given, matrix is ignored (as the fork)

A task not defined under ``tasks:`` is a directory under data_root (every ``train/out.tfrecord`` below it).
A directory without converted TFRecords may be an RLDS/TFDS dataset directory (dataset_info.json +
features.json, there or one or two levels down, e.g. ``bridge_dataset/1.0.0``): it is then read in place
through data_tools.rlds (no copy of a 400 GB download). data_root may itself be such a directory; the task
is then ``.``, the directory's name or the dataset's name.
Every problem is a ``ConfigError`` naming the file, the key, what was found and what is allowed; the whole
file is checked before the first run starts, so a typo in run 7 cannot waste runs 1-6.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import fnmatch
import json
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from bdv2.trainer.errors import ConfigError

ALGOS = ("bc", "gc_bc", "gc_ddpm_bc")
ENCODERS = ("resnetv1-34-bridge", "tiny")
GOAL_RELABELING = ("uniform", "last_state_upweighted")
PLATFORMS = ("cpu", "gpu", "cuda", "rocm", "tpu")
ALGO_DECAY_KEY = {"bc": "decay_steps_bc", "gc_bc": "decay_steps_gc_bc", "gc_ddpm_bc": "actor_decay_steps_gc_ddpm_bc"}
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
}


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
    encoder: str = "resnetv1-34-bridge"
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
    goal_relabeling: str = "uniform"
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


@dataclass(frozen=True)
class Source:
    """One include glob of a task: its TFRecord files or RLDS dataset directories, and its share of the samples.

    A source holds converted TFRecords or RLDS directories, never both (their streams differ in form).
    """

    pattern: str
    train_files: tuple[str, ...]
    val_files: tuple[str, ...]
    weight: float
    rlds_train: tuple[str, ...] = ()
    """RLDS dataset directories read for training (their train split)."""
    rlds_val: tuple[str, ...] = ()
    """The RLDS directories that have a val/validation/test split."""


@dataclass(frozen=True)
class Task:
    name: str
    sources: tuple[Source, ...]
    metadata: str


@dataclass(frozen=True)
class Run:
    """One experiment, fully resolved: what a child process needs to train (it is written as run.json)."""

    name: str
    algo: str
    task: Task
    settings: Settings
    config_file: str = ""
    notes: tuple[str, ...] = ()

    @property
    def workdir(self) -> Path:
        return Path(self.settings.save_dir) / self.name

    @property
    def decay_steps(self) -> int:
        s = self.settings
        return s.decay_steps if s.decay_steps is not None else int(getattr(s, ALGO_DECAY_KEY[self.algo]))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Run:
        task = d["task"]
        return cls(name=d["name"], algo=d["algo"], config_file=d.get("config_file", ""),
                   notes=tuple(d.get("notes", ())),
                   task=Task(task["name"], tuple(Source(s["pattern"], tuple(s["train_files"]), tuple(s["val_files"]),
                                                        float(s["weight"]), tuple(s.get("rlds_train", ())),
                                                        tuple(s.get("rlds_val", ())))
                                                 for s in task["sources"]),
                             task["metadata"]),
                   settings=build_settings(d["settings"], "run.json", "settings"))


@dataclass(frozen=True)
class Experiments:
    file: str
    runs: tuple[Run, ...]
    notes: tuple[str, ...] = field(default=())


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


# -- typed building ------------------------------------------------------------------------------

def _did_you_mean(word: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def check_keys(data: Mapping[str, Any], allowed: Sequence[str], file: str, where: str) -> None:
    for key in data:
        if key not in allowed:
            k = str(key)
            raise ConfigError(file, f"{where}.{k}" if where else k, "unknown key",
                              f"{_did_you_mean(k, allowed)}allowed: {', '.join(allowed)}")


def _describe(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(hint))
    if get_origin(hint) is tuple:
        return f"a list of {_describe(get_args(hint)[0])}"
    return "null" if hint is type(None) else hint.__name__


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
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 2.0e+6
        if isinstance(value, str) and re.fullmatch(r"[0-9.]+e[0-9]+", value):
            raise ConfigError(file, key, f"got the text {value!r}: YAML 1.1 reads 1e6 as a string",
                              f"write {int(float(value))} or {float(value):.1e}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
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
                              f"{_did_you_mean(v, allowed)}allowed: {', '.join(allowed)}")
    if not 0.0 <= values.get("dropout", 0.1) < 1.0 or not 0.0 <= values.get("reached_proportion", 0.0) <= 1.0:
        raise ConfigError(file, f"{where}.dropout/reached_proportion", "must lie in [0, 1)")
    return Settings(**values)


# -- devices -------------------------------------------------------------------------------------

def expected_devices(s: Settings) -> int | None:
    """How many local devices a run will see, from its env keys alone; None when only JAX can tell."""
    flags = s.xla_flags or ""
    m = re.search(r"--xla_force_host_platform_device_count=(\d+)", flags)
    if s.jax_platform_name == "cpu" or s.cuda_visible_devices == "":
        return int(m.group(1)) if m else 1
    if s.cuda_visible_devices:
        return len([d for d in s.cuda_visible_devices.split(",") if d.strip()])
    return None


def check_batch_sizes(s: Settings, file: str, where: str, devices: int | None) -> None:
    if devices is None:
        return
    for key in ("train_batch_size", "val_batch_size"):
        size = getattr(s, key)
        if size is not None and size % devices:
            raise ConfigError(file, f"{where}.{key}", f"{size} is not divisible by the {devices} device(s) this run "
                              "will see (cuda_visible_devices / jax_platform_name / xla_flags)",
                              f"use a multiple of {devices}, e.g. {max(devices, size // devices * devices)}")


# -- tasks ---------------------------------------------------------------------------------------

def _task_dirs(root: Path) -> list[str]:
    """Every directory under data_root that holds training data somewhere below it (for suggestions)."""
    out: set[str] = set()
    for f in root.rglob("train/out.tfrecord"):
        rel = f.parent.parent.relative_to(root)
        out.update(str(Path(*rel.parts[: i + 1])) for i in range(len(rel.parts)))
    return sorted(out)


def _rlds_dirs(d: Path) -> list[Path]:
    """The RLDS/TFDS dataset directories that `d` is or holds (one or two levels down)."""
    from bdv2.data_tools import rlds  # numpy and friends: only when a directory has no converted data

    return rlds.dataset_dirs(d)


def _rlds_root_matches(root: Path, pattern: str) -> bool:
    """data_root is itself an RLDS dataset directory and the task names it ('.', its name or the dataset's)."""
    if not ((root / "dataset_info.json").is_file() and (root / "features.json").is_file()):
        return False
    names = {".", "", root.name}
    # An unreadable dataset_info.json is reported by rlds.open_dir, when the source is resolved.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        names.add(str(json.loads((root / "dataset_info.json").read_text()).get("name", "")))
    return pattern.strip("/") in names


def _resolve_source(root: Path, pattern: str, exclude: Sequence[str], weight: float, file: str,
                    key: str) -> Source:
    train, val = [], []
    rlds_train: list[str] = []
    rlds_val: list[str] = []
    if _rlds_root_matches(root, pattern):
        dirs = [root]
    else:
        dirs = [root] if pattern.strip("/") in ("", ".") else sorted(p for p in root.glob(pattern) if p.is_dir())
    for d in dirs:
        found = False
        for f in sorted(d.rglob("train/out.tfrecord")):
            rel = str(f.parent.parent.relative_to(root))
            found = True
            if any(fnmatch.fnmatch(rel, x) for x in exclude):
                continue
            train.append(str(f))
            v = f.parent.parent / "val" / "out.tfrecord"
            if v.exists():
                val.append(str(v))
        if found:
            continue
        for r in _rlds_dirs(d):  # no converted data here: the release as downloaded?
            if r != root and any(fnmatch.fnmatch(str(r.relative_to(root)), x) for x in exclude):
                continue
            splits = _rlds_splits(r, file, key)
            rlds_train.append(str(r))
            if "val" in splits:
                rlds_val.append(str(r))
    if train and rlds_train:
        raise ConfigError(file, key, f"{root / pattern} matches both converted TFRecords ({train[0]}) and RLDS "
                          f"dataset directories ({rlds_train[0]})",
                          "list them as separate include globs under tasks:, or add the other to exclude")
    if not train and not rlds_train:
        known = _task_dirs(root) if root.is_dir() else []
        hint = _did_you_mean(pattern, known) + (f"directories with data: {', '.join(known[:8])}"
                                                + (" ..." if len(known) > 8 else "") if known else
                                                "no train/out.tfrecord (nor an RLDS dataset_info.json + "
                                                "features.json) anywhere under it: convert the data first "
                                                "(bdv2 data raw-to-tfrecord)")
        raise ConfigError(file, key, f"no train/out.tfrecord under {root / pattern}", hint)
    return Source(pattern, tuple(train), tuple(val), weight, tuple(rlds_train), tuple(rlds_val))


def _rlds_splits(path: Path, file: str, key: str) -> set[str]:
    """The bdv2 splits ('train', 'val') of an RLDS directory, checked now rather than in the child."""
    from bdv2.data_tools import rlds
    from bdv2.data_tools.errors import DataToolsError

    try:
        d = rlds.open_dir(path)
        rlds.check_features(d, 0)
    except DataToolsError as e:
        raise ConfigError(file, key, f"RLDS directory {path} cannot be read: {e}",
                          f"check it with `bdv2 data inspect {path}`") from e
    if "train" not in d.shards:
        raise ConfigError(file, key, f"RLDS directory {path} has no train split (has {sorted(d.shards)})",
                          "point the task at a dataset with a train split")
    return set(d.shards)


def resolve_task(name: str, spec: Mapping[str, Any] | None, s: Settings, file: str, key: str) -> Task:
    """A task from its ``tasks:`` definition, or the directory ``data_root/<name>``."""
    root = Path(s.data_root).expanduser()
    if not root.is_dir():
        raise ConfigError(file, "global.data_root", f"{root} is not a directory",
                          "point it at the output of `bdv2 data raw-to-tfrecord`")
    spec = spec or {}
    where = f"tasks.{name}" if spec else key
    include = spec.get("include", [name])
    exclude = spec.get("exclude", [])
    for k, v in (("include", include), ("exclude", exclude)):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or (k == "include" and not v):
            raise ConfigError(file, f"{where}.{k}", f"expected a list of globs under data_root, got {v!r}")
    weights = spec.get("sample_weights")
    if weights is None:
        weights = [1.0] * len(include)
    if (not isinstance(weights, list) or len(weights) != len(include)
            or not all(isinstance(w, int | float) and not isinstance(w, bool) and w > 0 for w in weights)):
        raise ConfigError(file, f"{where}.sample_weights", f"expected {len(include)} positive numbers "
                          f"(one per include glob), got {weights!r}")
    total = float(sum(weights))
    sources = tuple(_resolve_source(root, p, exclude, w / total, file, f"{where}.include[{i}]" if spec else key)
                    for i, (p, w) in enumerate(zip(include, weights, strict=True)))
    metadata = spec.get("metadata") or s.metadata or str(root / "metadata.json")
    if not isinstance(metadata, str):
        raise ConfigError(file, f"{where}.metadata", f"expected a path, got {metadata!r}")
    meta = Path(metadata).expanduser()
    if not meta.is_absolute() and not meta.exists():
        meta = root / meta
    if not meta.is_file():
        raise ConfigError(file, f"{where}.metadata" if spec.get("metadata") else "global.metadata",
                          f"normalisation statistics {meta} not found",
                          f"bdv2 data stats {root} --out {root / 'metadata.json'}")
    return Task(name, sources, str(meta))


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
                                  f"{_did_you_mean(name, SETTING_KEYS)}allowed: the global: keys "
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


def expand(data: Mapping[str, Any], file: str, devices: int | None = None) -> Experiments:
    """Validate a loaded multi_train.yaml and expand it into runs.

    Args:
        devices: the device count to check batch sizes against; default: what the env keys imply.

    Raises:
        ConfigError: the first problem found, naming the key.
    """
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
    raw_runs, notes = _run_list(data, file)
    resolved: dict[str, Task] = {}
    runs: list[Run] = []
    for r in raw_runs:
        where = r["_where"]
        if r["algo"] not in ALGOS:
            raise ConfigError(file, where if "matrix" in where else f"{where}.algo", f"unknown algorithm {r['algo']!r}",
                              f"{_did_you_mean(r['algo'], ALGOS)}allowed: {', '.join(ALGOS)}")
        over = _overrides(r, file, where)
        s = build_settings({**glob, **over}, file, where if over else "global")
        if r["algo"] == "gc_ddpm_bc":  # the diffusion policy needs a time axis on observations and actions
            s = dataclasses.replace(s, obs_horizon=s.obs_horizon or 1, act_pred_horizon=s.act_pred_horizon or 1)
        n_dev = devices if devices is not None else expected_devices(s)
        check_batch_sizes(s, file, where if over else "global", n_dev)
        task_key = r.get("_task_where", f"{where}.task")
        key = (r["task"], s.data_root, s.metadata)
        cache_key = repr(key)
        if cache_key not in resolved:
            resolved[cache_key] = resolve_task(r["task"], tasks.get(r["task"]), s, file, task_key)
        name = r.get("name") or _format_name(s.name_format, r["algo"], r["task"], file, where)
        runs.append(Run(name, r["algo"], resolved[cache_key], s, file))
    seen: dict[str, str] = {}
    for run, r in zip(runs, raw_runs, strict=True):
        if run.name in seen:
            raise ConfigError(file, r["_where"], f"run name {run.name!r} is used twice (also {seen[run.name]}); "
                              "both would write to the same directory", "give one of them a name:")
        seen[run.name] = r["_where"]
    return Experiments(file, tuple(runs), tuple(notes))


def _format_name(fmt: str, algo: str, task: str, file: str, where: str) -> str:
    try:
        name = fmt.format(algo=algo, task=task)
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(file, "global.name_format", f"{fmt!r} cannot be formatted ({e})",
                          "use only {algo} and {task}") from e
    return name.replace("/", "-")


def load(path: Path, overrides: Mapping[str, Any] | None = None, devices: int | None = None) -> Experiments:
    """Load, validate and expand a multi_train.yaml; ``overrides`` replace ``global:`` keys (the demo's paths)."""
    data = load_yaml(path)
    if overrides:
        glob = data.get("global")
        data = {**data, "global": {**(glob if isinstance(glob, dict) else {}), **overrides}}
    return expand(data, str(path), devices)


def only(exp: Experiments, names: Sequence[str]) -> Experiments:
    """Keep the runs named in ``names`` (the --only option); unknown names are an error with a suggestion."""
    if not names:
        return exp
    known = [r.name for r in exp.runs]
    for n in names:
        if n not in known:
            raise ConfigError(exp.file, "--only", f"no run named {n!r}",
                              f"{_did_you_mean(n, known)}runs: {', '.join(known)}")
    return dataclasses.replace(exp, runs=tuple(r for r in exp.runs if r.name in names))
