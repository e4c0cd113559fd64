"""`bdv2 data inspect` and `bdv2 data stats`: read a raw, numpy, TFRecord or RLDS tree into light per-trajectory
facts (lengths, image size, language, actions, states), summarise them, flag what a trainer would choke on,
and compute the normalisation statistics the trainer reads.

Raw trees are inspected without decoding images (pickles, file counts and one JPEG header per trajectory)
and judged by the converters' own length rule (raw.align_lengths), so inspect flags what they would skip;
RLDS directories likewise (parsed Examples, one JPEG header per episode), with the last step's action dropped
as the RLDS converter does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_never

import numpy as np

from . import layout, schema
from .contract import KEY, infer_contract
from .errors import BadTrajectory, DataToolsError, InputLayoutError
from .raw import (
    align_lengths,
    camera_dirs,
    frame_counts,
    load_npy,
    read_actions,
    read_language,
    read_obs,
)
from .trajectory import relabel_actions


class DataKind(enum.StrEnum):
    """What a directory holds, as `detect_kind` finds it; the values are the spellings reports print."""

    RLDS = "rlds"
    """An RLDS/TFDS dataset directory (the release as downloaded), or a folder above one."""
    TFRECORD = "tfrecord"
    """Converted TFRecords (bdv2's or the original scripts')."""
    NUMPY = "numpy"
    """The original's numpy intermediate (out.npy)."""
    RAW = "raw"
    """Raw trajectory directories."""

    def __repr__(self) -> str:  # the spelling, as when this was a plain string
        return repr(self.value)


@dataclass(frozen=True)
class TrajFacts:
    group: str
    """task dir (relative) and split, e.g. 'rss/toykitchen2/sweep_beans/00 train'."""
    path: str
    image_shape: tuple[int, ...]
    language: list[str]
    state: np.ndarray
    """[T + 1, 7]"""
    actions: np.ndarray
    """[T, 7] raw actions"""


@dataclass
class Inspection:
    kind: DataKind
    groups: dict[str, dict[str, int]] = field(default_factory=dict)
    """group -> trajectories, frames, labeled (trajectories with a non-empty instruction)."""
    image_shapes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    """Truncated or corrupt files, one line each (also in problems)."""
    stats: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    contract: dict[str, Any] | None = None
    """The action contract (contract.py) of the actions the statistics describe."""


def detect_kind(path: Path) -> DataKind:
    from . import rlds

    # Checked first: a TFDS directory's shards end in .tfrecord-00000-of-N, and a user may point at the
    # dataset folder above its version directory (bridge_dataset/ rather than bridge_dataset/1.0.0/).
    if rlds.dataset_dirs(path):
        return DataKind.RLDS
    if next(path.rglob("*.tfrecord"), None) is not None:
        return DataKind.TFRECORD
    if next(path.rglob("out.npy"), None) is not None:
        return DataKind.NUMPY
    return DataKind.RAW


def _rel_group(file: Path, root: Path) -> str:
    return f"{file.parent.parent.relative_to(root)} {file.parent.name}"


def _iter_tfrecord(root: Path, problems: list[str], damaged: list[str]) -> Iterator[TrajFacts]:
    from .records import CorruptRecordError

    for file in sorted(root.rglob("*.tfrecord")):
        try:
            for i, arrays in enumerate(schema.read_tfrecord(file)):
                state = np.concatenate([arrays["observations/state"], arrays["next_observations/state"][-1:]])
                yield TrajFacts(_rel_group(file, root), f"{file}[{i}]", arrays["observations/images0"].shape[1:],
                                list(arrays["language"]), state, arrays["actions"])
        except CorruptRecordError as e:  # every damaged file is listed, not only the first
            damaged.append(str(e))


def _iter_numpy(root: Path, problems: list[str]) -> Iterator[TrajFacts]:
    for file in sorted(root.rglob("out.npy")):
        for i, record in enumerate(load_npy(file)):
            where = f"{file}[{i}]"
            try:
                arrays = schema.arrays_from_numpy_record(record)
            except (KeyError, TypeError, ValueError, IndexError) as e:
                problems.append(f"{where}: malformed trajectory ({type(e).__name__}: {e})")
                continue
            problems.extend(schema.check_arrays(arrays, where))
            state = np.concatenate([arrays["observations/state"], arrays["next_observations/state"][-1:]])
            yield TrajFacts(_rel_group(file, root), where, arrays["observations/images0"].shape[1:],
                            list(record["language"]), state, arrays["actions"])


def _iter_rlds(root: Path, problems: list[str], damaged: list[str]) -> Iterator[TrajFacts]:
    from . import rlds

    for ep in rlds.iter_facts(root, problems=problems, damaged=damaged):
        short = rlds.too_short(len(ep.state))
        if short:
            problems.append(f"{ep.where}: {short} (the converter skips it)")
            continue
        yield TrajFacts(f"{ep.dataset} {ep.split}", ep.where, ep.image_shape,
                        ep.language, ep.state, ep.actions)


def raw_facts(traj: Path, group: str, shift: bool) -> TrajFacts:
    """A raw trajectory's facts, aligned by the converters' own rule (raw.align_lengths)."""
    from PIL import Image

    state, time_stamp = read_obs(traj)
    actions = np.stack(read_actions(traj)).astype(np.float64)
    cams = camera_dirs(traj)
    aligned = align_lengths(str(traj), frame_counts(cams), len(state), len(time_stamp), len(actions), shift)
    with (cams[0] / "im_0.jpg").open("rb") as f, Image.open(f) as im:  # a local file or a URL
        shape = (im.height, im.width, len(im.getbands()))
    return TrajFacts(group, str(traj), shape, read_language(traj),
                     np.asarray(state[aligned.start:aligned.stop], dtype=np.float64), actions[:aligned.length])


def _iter_raw(root: Path, depth: int, problems: list[str]) -> Iterator[TrajFacts]:
    for task_dir in layout.find_raw_tasks(root, depth):
        plan = layout.plan_raw_task(task_dir, root, depth, 1.0, 0)
        problems.extend(plan.notes)
        for traj, shift in plan.train:
            try:
                yield raw_facts(traj, f"{task_dir.relative_to(root)} all", shift)
            except BadTrajectory as e:
                problems.append(str(e))


def iter_facts(path: Path, depth: int, problems: list[str],
               damaged: list[str] | None = None) -> tuple[DataKind, Iterator[TrajFacts]]:
    """(kind of tree, its trajectories' facts); what cannot be read goes to ``problems``, and truncated or
    corrupt TFRecord files (one line each) to ``damaged`` (default: ``problems``)."""
    if not path.is_dir():
        raise InputLayoutError(f"{path}: not a directory")
    layout.check_not_empty(path)
    kind = detect_kind(path)
    match kind:
        case DataKind.RLDS:
            return kind, _iter_rlds(path, problems, problems if damaged is None else damaged)
        case DataKind.TFRECORD:
            return kind, _iter_tfrecord(path, problems, problems if damaged is None else damaged)
        case DataKind.NUMPY:
            return kind, _iter_numpy(path, problems)
        case DataKind.RAW:
            return kind, _iter_raw(path, depth, problems)
        case _:
            assert_never(kind)


def _moments(rows: list[np.ndarray]) -> dict[str, list[float]]:
    x = np.concatenate(rows).astype(np.float64)
    return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "min": x.min(0).tolist(), "max": x.max(0).tolist()}


def inspect_tree(path: Path, depth: int = 5, im_size: int | None = None, relabel: bool = True) -> Inspection:
    """Summarise a raw, numpy, TFRecord or RLDS tree and list what a trainer would choke on."""
    problems: list[str] = []
    damaged: list[str] = []
    kind, facts = iter_facts(path, depth, problems, damaged)
    result = Inspection(kind, damaged=damaged)
    actions, proprio = [], []
    for f in facts:
        g = result.groups.setdefault(f.group, {"trajectories": 0, "frames": 0, "labeled": 0})
        g["trajectories"] += 1
        g["frames"] += len(f.actions)
        g["labeled"] += int(any(s.strip() for s in f.language))
        shape = "x".join(map(str, f.image_shape))
        result.image_shapes[shape] = result.image_shapes.get(shape, 0) + 1
        if not f.language:
            problems.append(f"{f.path}: no language entry (every lang.txt line contains 'confidence')")
        if im_size is not None and kind is not DataKind.RAW and f.image_shape != (im_size, im_size, 3):
            problems.append(f"{f.path}: images are {shape}, expected {im_size}x{im_size}x3")
        actions.append(relabel_actions(f.state, f.actions) if relabel else f.actions)
        proprio.append(f.state)
    if actions:
        result.stats = {"action": _moments(actions), "proprio": _moments([s[:-1] for s in proprio])}
        result.contract = infer_contract(list(zip(proprio, actions, strict=True)),
                                         "relabeled" if relabel else "raw").to_dict()
    elif not damaged:
        problems.append(f"{path}: no readable trajectory found")
    result.problems = damaged + problems
    return result


def compute_stats(path: Path, depth: int = 5, relabel: bool = True) -> dict[str, Any]:
    """Action and proprio mean/std/min/max, in the trainer's `action_proprio_metadata` form, and the
    `action_contract` of those actions (contract.py: frame, units, latency, gripper).

    Raises:
        DataToolsError: no readable trajectory, or a truncated or corrupt file (statistics that silently
            leave out its trajectories would differ from the data the trainer is given).
    """
    result = inspect_tree(path, depth, relabel=relabel)
    if result.damaged:
        raise DataToolsError("\n".join(result.damaged))
    if not result.stats:
        raise DataToolsError(f"{path}: no readable trajectory to compute statistics from; check --depth")
    return {**result.stats, KEY: result.contract}
