"""Tasks on disk: a task name or ``tasks:`` definition -> the TFRecord files or RLDS dataset directories it
reads, and its normalisation statistics, checked before anything runs.

A task not defined under ``tasks:`` is a directory under data_root (every ``train/out.tfrecord`` below it).
A directory without converted TFRecords may be an RLDS/TFDS dataset directory (dataset_info.json +
features.json, there or one or two levels down, e.g. ``bridge_dataset/1.0.0``): it is then read in place
through data_tools.rlds (no copy of a 400 GB download). data_root may itself be such a directory; the task
is then ``.``, the directory's name or the dataset's name.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bdv2.paths import AnyPath, as_path, is_url, orbax_problem, scheme_problem

from .errors import ConfigError
from .model import Source, Task
from .settings import Settings, did_you_mean

BRIDGE_V2 = "bridge_v2"
BRIDGE_V2_METADATA = Path(__file__).resolve().parent / "configs" / "bridge_v2_metadata.json"
"""``metadata: bridge_v2``: the original's published statistics (its data_config.py), proprio normalised with
them as the original does."""


def _task_dirs(root: AnyPath) -> list[str]:
    """Every directory under data_root that holds training data somewhere below it (for suggestions)."""
    out: set[str] = set()
    for f in root.rglob("train/out.tfrecord"):
        rel = f.parent.parent.relative_to(str(root))
        out.update("/".join(rel.parts[: i + 1]) for i in range(len(rel.parts)))
    return sorted(out)


def _rlds_dirs(d: AnyPath) -> list[AnyPath]:
    """The RLDS/TFDS dataset directories that `d` is or holds (one or two levels down)."""
    from bdv2.data_tools import rlds  # numpy and friends: only when a directory has no converted data

    return rlds.dataset_dirs(d)


def _rlds_root_matches(root: AnyPath, pattern: str) -> bool:
    """data_root is itself an RLDS dataset directory and the task names it ('.', its name or the dataset's)."""
    if not ((root / "dataset_info.json").is_file() and (root / "features.json").is_file()):
        return False
    names = {".", "", root.name}
    # An unreadable dataset_info.json is reported by rlds.open_dir, when the source is resolved.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        names.add(str(json.loads((root / "dataset_info.json").read_text()).get("name", "")))
    return pattern.strip("/") in names


def _resolve_source(root: AnyPath, pattern: str, exclude: Sequence[str], weight: float, file: str,
                    key: str) -> Source:
    train, val = [], []
    rlds_train: list[str] = []
    rlds_val: list[str] = []
    dirs: list[AnyPath]
    if _rlds_root_matches(root, pattern):
        dirs = [root]
    else:
        dirs = [root] if pattern.strip("/") in ("", ".") else sorted((p for p in root.glob(pattern) if p.is_dir()),
                                                                     key=str)
    for d in dirs:
        found = False
        records: list[AnyPath] = sorted(d.rglob("train/out.tfrecord"), key=str)
        for f in records:
            rel = str(f.parent.parent.relative_to(str(root)))
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
            if r != root and any(fnmatch.fnmatch(str(r.relative_to(str(root))), x) for x in exclude):
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
        hint = did_you_mean(pattern, known) + (f"directories with data: {', '.join(known[:8])}"
                                                + (" ..." if len(known) > 8 else "") if known else
                                                "no train/out.tfrecord (nor an RLDS dataset_info.json + "
                                                "features.json) anywhere under it: convert the data first "
                                                "(bdv2 data raw-to-tfrecord)")
        raise ConfigError(file, key, f"no train/out.tfrecord under {root / pattern}", hint)
    return Source(pattern, tuple(train), tuple(val), weight, tuple(rlds_train), tuple(rlds_val))


def _rlds_splits(path: AnyPath, file: str, key: str) -> set[str]:
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


def include_groups(include: Any, file: str, key: str) -> list[list[str]]:
    """``include`` -> its groups: a glob is a group of its own (one weight each); a list of globs is one group
    whose files form one dataset (the original's list of lists, experiments/configs/data_config.py)."""
    bad = ConfigError(file, key, f"expected a list of globs under data_root or a list of lists of them, got "
                      f"{include!r}", "e.g. include: [[kitchen/*, sink/*], toykitchen2]  (two groups)")
    if not isinstance(include, list) or not include:
        raise bad
    groups = [[g] if isinstance(g, str) else g for g in include]
    if not all(isinstance(g, list) and g and all(isinstance(x, str) for x in g) for g in groups):
        raise bad
    return groups


def _resolve_group(root: AnyPath, globs: Sequence[str], exclude: Sequence[str], weight: float, file: str,
                   key: str) -> Source:
    """One include group -> one source: its globs' files together (in order, each once)."""
    if len(globs) == 1:
        return _resolve_source(root, globs[0], exclude, weight, file, key)
    parts = [_resolve_source(root, g, exclude, weight, file, f"{key}[{j}]") for j, g in enumerate(globs)]
    if any(p.train_files for p in parts) and any(p.rlds_train for p in parts):
        tf_glob = next(p.pattern for p in parts if p.train_files)
        rlds_glob = next(p.pattern for p in parts if p.rlds_train)
        raise ConfigError(file, key, f"the group mixes converted TFRecords ({tf_glob}) and RLDS dataset "
                          f"directories ({rlds_glob}); a group is read as one dataset", "put them in separate groups")

    def union(attr: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(x for p in parts for x in getattr(p, attr)))

    return Source(" + ".join(globs), union("train_files"), union("val_files"), weight, union("rlds_train"),
                  union("rlds_val"))


def resolve_task(name: str, spec: Mapping[str, Any] | None, s: Settings, file: str, key: str) -> Task:
    """A task from its ``tasks:`` definition, or the directory ``data_root/<name>``.

    data_root and metadata may be URLs (``gs://...``: bdv2.paths); storage that cannot be reached (no
    network, no credentials, a missing bucket) is a ConfigError naming data_root, in one line.
    """
    remote = scheme_problem(s.data_root, "data_root")
    if remote is not None:
        raise ConfigError(file, "global.data_root", remote.problem, remote.fix)
    out = scheme_problem(s.save_dir, "save_dir") or orbax_problem(s.save_dir, "save_dir")
    if out is not None:  # before anything opens the run folder through the URL
        raise ConfigError(file, "global.save_dir", out.problem, out.fix)
    root = as_path(s.data_root)
    try:
        return _resolve_task(root, name, spec, s, file, key)
    except OSError as e:
        if not is_url(root):
            raise
        why = " ".join(str(e.strerror or e).split())  # TensorFlow's messages span lines
        raise ConfigError(file, "global.data_root", f"{root} cannot be read: {why}",
                          "check the URL, the network and the credentials (for gs://: `gcloud auth "
                          "application-default login` or GOOGLE_APPLICATION_CREDENTIALS)") from None


def _resolve_task(root: AnyPath, name: str, spec: Mapping[str, Any] | None, s: Settings, file: str,
                  key: str) -> Task:
    if not root.is_dir():
        if is_url(root):
            root.exists()  # storage that cannot be reached says so here (an OSError), not "not a directory"
        raise ConfigError(file, "global.data_root", f"{root} is not a directory",
                          "point it at the output of `bdv2 data raw-to-tfrecord`")
    from bdv2.data_tools import layout
    from bdv2.data_tools.errors import EmptyFolderError

    try:
        layout.check_not_empty(root)
    except EmptyFolderError:
        raise ConfigError(file, "global.data_root", f"{root}: this folder is empty (no file in it or below it)",
                          "point it at the output of `bdv2 data raw-to-tfrecord` (or an RLDS dataset), or run "
                          "the conversion first") from None
    spec = spec or {}
    where = f"tasks.{name}" if spec else key
    groups = include_groups(spec.get("include", [name]), file, f"{where}.include")
    exclude = spec.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise ConfigError(file, f"{where}.exclude", f"expected a list of globs under data_root, got {exclude!r}")
    weights = spec.get("sample_weights")
    if weights is None:
        weights = [1.0] * len(groups)
    if (not isinstance(weights, list) or len(weights) != len(groups)
            or not all(isinstance(w, int | float) and not isinstance(w, bool) and w > 0 for w in weights)):
        raise ConfigError(file, f"{where}.sample_weights", f"expected {len(groups)} positive numbers "
                          f"(one per include group: a glob, or a list of globs), got {weights!r}")
    total = float(sum(weights))
    sources = tuple(_resolve_group(root, g, exclude, w / total, file, f"{where}.include[{i}]" if spec else key)
                    for i, (g, w) in enumerate(zip(groups, weights, strict=True)))
    metadata = spec.get("metadata") or s.metadata or str(root / "metadata.json")
    if not isinstance(metadata, str):
        raise ConfigError(file, f"{where}.metadata", f"expected a path, got {metadata!r}")
    if metadata == BRIDGE_V2:
        metadata = str(BRIDGE_V2_METADATA)
    bad = scheme_problem(metadata, "metadata")
    if bad is not None:
        raise ConfigError(file, f"{where}.metadata" if spec.get("metadata") else "global.metadata", bad.problem,
                          bad.fix)
    meta = as_path(metadata)
    if not meta.is_absolute() and not meta.exists():
        meta = root / str(meta)
    if not meta.is_file():
        raise ConfigError(file, f"{where}.metadata" if spec.get("metadata") else "global.metadata",
                          f"normalisation statistics {meta} not found",
                          f"bdv2 data stats {root} --out {root / 'metadata.json'}")
    return Task(name, sources, str(meta))
