"""``init_from:``: fine-tune from another run's parameters.

The run starts at step 0 with a fresh optimiser (Adam moments zero, the learning-rate schedule from its
start), its parameters and target parameters taken from ``init_from``: a bdv2 run directory (its latest
checkpoint), one of its step directories, or a directory `bdv2 checkpoint import` wrote from an original
BridgeData V2 checkpoint. The trees must match the run's network exactly; the first path that differs is
named. A run that already has checkpoints of its own resumes from them instead (loop.train_and_evaluate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from . import ckpt_tree
from .ckpt_tree import CheckpointError


def load(path: str | Path, like: Any, file: str = "") -> tuple[Any, Any]:
    """(params, target_params) of the checkpoint at ``path``, shaped and typed as ``like`` (the run's params).

    Raises:
        CheckpointError: not a run/step directory, or a tree that differs from the run's network.
    """
    where = f"{file}: init_from: " if file else "init_from: "
    try:
        _, step_dir = ckpt_tree.locate(path)
    except CheckpointError as e:
        raise CheckpointError(f"{where}{e}") from e
    raw = ckpt_tree.restore_raw(step_dir)
    params = raw.get("params")
    target = raw.get("target_params", params)
    if not isinstance(params, dict) or not isinstance(target, dict):
        raise CheckpointError(f"{where}{step_dir}: no parameters inside")
    expected = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), like)
    diff = ckpt_tree.first_difference(_plain(expected), params)
    if diff is not None:
        raise CheckpointError(f"{where}{step_dir} does not fit this run's network: the parameter trees differ at "
                              f"{diff}; init_from needs the same algo, encoder, hidden_dims, obs_horizon, "
                              "act_pred_horizon and use_proprio")
    return _like(params, like), _like(target, like)


def _plain(tree: Any) -> Any:
    return {str(k): _plain(v) for k, v in tree.items()} if hasattr(tree, "items") else tree


def _like(raw: Any, like: Any) -> Any:
    return jax.tree.map(lambda x, ref: jnp.asarray(x[...] if hasattr(x, "shape") else x, ref.dtype),
                        _reorder(raw, like), like)


def _reorder(raw: Any, like: Any) -> Any:
    """``raw`` (plain dicts) in the container types and key order of ``like``."""
    return {k: _reorder(raw[str(k)], v) for k, v in like.items()} if hasattr(like, "items") else raw


def apply(state: Any, path: str | Path, file: str = "") -> Any:
    """``state`` (a fresh loop.TrainState) with its params and target params replaced from ``path``;
    step, optimiser state and rng stay fresh."""
    params, target = load(path, state.params, file)
    return state.replace(params=params, target_params=target)
