"""What checkpoint import/export, init_from and load_policy share: finding the checkpoint of a run directory,
reading its config snapshot, restoring a state without a target, and comparing parameter trees path by path.

A bdv2 run directory (loop.py) is::

    <run>/config.json               run.to_dict() + "metadata" (the normalisation statistics)
    <run>/checkpoints/<step>/       an orbax CheckpointManager step (StandardSave of loop.TrainState)

Paths of a parameter tree are written "a/b/c" (flattened with `flatten`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from bdv2.paths import AnyPath, as_path, orbax_path

from .errors import TrainerError

CONFIG_SNAPSHOT = "config.json"  # loop.CONFIG_SNAPSHOT (not imported: loop.py imports TensorFlow's pipeline)
CHECKPOINTS = "checkpoints"


class CheckpointError(TrainerError):
    """A checkpoint that cannot be read, written or used as asked: names the path and what to do."""


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": x}} -> {"a/b": x}."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        path = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, path))
        else:
            out[path] = v
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, v in flat.items():
        node = out
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def first_difference(expected: Mapping[str, Any], got: Mapping[str, Any]) -> str | None:
    """The first path (sorted) missing from one tree or of another shape, described; None when they agree."""
    a, b = flatten(expected), flatten(got)
    for path in sorted(set(a) | set(b)):
        if path not in b:
            return f"{path}: missing (expected shape {tuple(np.shape(a[path]))})"
        if path not in a:
            return f"{path}: not in the model (shape {tuple(np.shape(b[path]))})"
        if tuple(np.shape(a[path])) != tuple(np.shape(b[path])):
            return f"{path}: shape {tuple(np.shape(b[path]))}, the model has {tuple(np.shape(a[path]))}"
    return None


def step_dirs(run_dir: AnyPath) -> list[AnyPath]:
    """The run's checkpoint step directories, oldest first."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def locate(path: AnyPath | str) -> tuple[AnyPath, AnyPath]:
    """(run directory, step directory) of a run directory (its latest step) or of one step directory.

    Raises:
        CheckpointError: neither, or a run without checkpoints.
    """
    path = as_path(path).expanduser().resolve()  # a URL (gs://...) stays as it is
    if path.name.isdigit() and path.parent.name == CHECKPOINTS and (path.parent.parent / CONFIG_SNAPSHOT).is_file():
        return path.parent.parent, path
    if not (path / CONFIG_SNAPSHOT).is_file():
        raise CheckpointError(f"{path}: not a bdv2 run directory (no {CONFIG_SNAPSHOT}) nor a step directory "
                              f"<run>/{CHECKPOINTS}/<step>; give the directory `bdv2 train` or `bdv2 checkpoint "
                              "import` wrote")
    steps = step_dirs(path)
    if not steps:
        raise CheckpointError(f"{path}: the run has no checkpoint yet ({path / CHECKPOINTS} is empty); train it "
                              "until a save_interval passes")
    return path, steps[-1]


def read_snapshot(run_dir: AnyPath) -> dict[str, Any]:
    file = run_dir / CONFIG_SNAPSHOT
    try:
        snapshot: dict[str, Any] = json.loads(file.read_text())
        if not isinstance(snapshot["settings"], dict) or not isinstance(snapshot["metadata"], dict):
            raise TypeError("settings and metadata must be objects")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{file}: not a bdv2 config snapshot ({type(e).__name__}: {e})") from e
    return snapshot


def restore_raw(step_dir: AnyPath) -> dict[str, Any]:
    """The saved TrainState of one step as a tree of numpy arrays, without building the model first.

    Host arrays, whatever devices the checkpoint was saved from: orbax restores a saved jax.Array onto the
    sharding it was saved with unless told otherwise, and refuses ("Topology mismatch") in a process with
    other devices; asking for numpy arrays reads the full values and places nothing.
    """
    import jax
    import orbax.checkpoint as ocp

    item = step_dir / "default" if (step_dir / "default").is_dir() else step_dir
    try:
        with ocp.PyTreeCheckpointer() as ckptr:
            saved = ckptr.metadata(orbax_path(item)).item_metadata.tree
            as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), saved)
            tree = ckptr.restore(orbax_path(item), args=ocp.args.PyTreeRestore(restore_args=as_numpy))
    except Exception as e:  # orbax raises many types for a damaged or foreign directory
        raise CheckpointError(f"{item}: cannot restore the checkpoint ({type(e).__name__}: {e})") from e
    return _to_numpy(tree)


def _to_numpy(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {str(k): _to_numpy(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return {str(i): _to_numpy(v) for i, v in enumerate(tree)}
    return np.asarray(tree)
