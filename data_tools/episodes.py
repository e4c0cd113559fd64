"""One reader of whole episodes for `bdv2 data check` and `bdv2 data view`, over the four formats bdv2 reads:
states, actions and instructions always, camera-0 frames when asked (decoded small where the source is large).

Alignment is each format's own converter rule (summary.iter_facts and rlds.transition_actions): state [T + 1, 7],
actions [T, 7], frames [T + 1, H, W, 3].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, assert_never

import numpy as np

from .errors import BadTrajectory, DataToolsError

if TYPE_CHECKING:
    from .summary import DataKind

RAW_FRAME_SIZE = 128
"""Raw JPEGs (640x480) are decoded straight to this square size for frame checks and pages."""


@dataclass(frozen=True)
class Ep:
    where: str
    """file[index] or the trajectory directory: what a user opens to find it."""
    split: str
    state: np.ndarray
    """[T + 1, 7] float64"""
    actions: np.ndarray
    """[T, 7] float64, as recorded"""
    language: list[str]
    frames: np.ndarray | None = None
    """[T + 1, H, W, 3] uint8, camera 0, when asked for."""
    frame_facts: FrameFacts | None = None
    """What the checks need of the frames, kept when the frames themselves are let go (see `light`)."""

    def light(self) -> Ep:
        """This episode without its frames but with their FrameFacts: what a check over a whole release keeps
        in memory (a 256x256 episode of 38 steps is 7.5 MB of frames, 60,000 of them 450 GB)."""
        if self.frames is None:
            return self
        return replace(self, frames=None, frame_facts=FrameFacts.of(self.frames))


BLACK_LEVEL = 8
"""A frame whose brightest pixel is at most this is black (JPEG noise keeps true black a few levels up)."""


@dataclass(frozen=True)
class FrameFacts:
    frames: int
    black: int
    """Frames whose brightest pixel is at most BLACK_LEVEL."""
    static: bool
    """Every frame equal to the first."""

    @classmethod
    def of(cls, frames: np.ndarray) -> FrameFacts:
        peak = frames.reshape(len(frames), -1).max(axis=1)  # [T + 1]
        return cls(len(frames), int(np.sum(peak <= BLACK_LEVEL)), bool(len(frames) > 1 and np.all(frames == frames[0])))


def _rlds(path: Path, frames: bool, problems: list[str]) -> Iterator[Ep]:
    from . import rlds

    if not frames:
        for f in rlds.iter_facts(path, problems=problems):
            yield Ep(f.where, f.split, f.state.astype(np.float64), f.actions.astype(np.float64), f.language)
        return
    d = rlds.open_dir(path)
    rlds.check_features(d, 0)
    for split, files in d.shards.items():
        for shard in files:
            for index, raw in enumerate(rlds.iter_shard(d, shard, 0, decode=True)):
                state, action = rlds.check_episode(raw, d, 0, shard, index)
                yield Ep(raw.where, split, state.astype(np.float64),
                         rlds.transition_actions(action).astype(np.float64),
                         rlds.instructions(raw.values["language"]), raw.values["images"])


def _tfrecord(path: Path, frames: bool) -> Iterator[Ep]:
    from . import schema

    for file in sorted(path.rglob("*.tfrecord")):
        for i, a in enumerate(schema.read_tfrecord(file)):
            state = np.concatenate([a["observations/state"], a["next_observations/state"][-1:]])
            images = np.concatenate([a["observations/images0"], a["next_observations/images0"][-1:]])
            yield Ep(f"{file}[{i}]", file.parent.name, state.astype(np.float64), a["actions"].astype(np.float64),
                     list(a["language"]), images if frames else None)


def _numpy(path: Path, frames: bool, problems: list[str]) -> Iterator[Ep]:
    from . import schema
    from .raw import load_npy

    for file in sorted(path.rglob("out.npy")):
        for i, record in enumerate(load_npy(file)):
            try:
                a = schema.arrays_from_numpy_record(record)
            except (KeyError, TypeError, ValueError, IndexError) as e:
                problems.append(f"{file}[{i}]: malformed trajectory ({type(e).__name__}: {e})")
                continue
            state = np.concatenate([a["observations/state"], a["next_observations/state"][-1:]])
            images = np.concatenate([a["observations/images0"], a["next_observations/images0"][-1:]])
            yield Ep(f"{file}[{i}]", file.parent.name, state.astype(np.float64), a["actions"].astype(np.float64),
                     list(record["language"]), images if frames else None)


def _raw(path: Path, depth: int, frames: bool, problems: list[str]) -> Iterator[Ep]:
    from . import layout
    from .raw import ResizeMode, read_trajectory
    from .summary import raw_facts

    for task_dir in layout.find_raw_tasks(path, depth):
        plan = layout.plan_raw_task(task_dir, path, depth, 1.0, 0)
        problems.extend(plan.notes)
        for traj, shift in plan.train:
            try:
                if not frames:
                    f = raw_facts(traj, "", shift)
                    yield Ep(f.path, "all", f.state, f.actions, f.language)
                    continue
                e = read_trajectory(traj, im_size=RAW_FRAME_SIZE, latency_shift=shift, cameras="first",
                                    mode=ResizeMode.DRAFT)
                yield Ep(e.path, "all", np.asarray(e.state, np.float64), np.stack(e.actions).astype(np.float64),
                         e.language, next(iter(e.images.values())))
            except BadTrajectory as err:
                problems.append(str(err))


def iter_sources(tfrecords: list[Path], rlds_dirs: list[Path]) -> Iterator[Ep]:
    """The episodes of given TFRecord files (the original schema) and of the train split of RLDS dataset
    directories, in that order, without frames: what a training task's sources name.

    Raises:
        DataToolsError: an RLDS directory bdv2 cannot read.
    """
    from . import schema

    for file in tfrecords:
        for i, a in enumerate(schema.read_tfrecord(file)):
            state = np.concatenate([a["observations/state"], a["next_observations/state"][-1:]])
            yield Ep(f"{file}[{i}]", file.parent.name, state.astype(np.float64), a["actions"].astype(np.float64),
                     list(a["language"]))
    for d in rlds_dirs:  # training reads an RLDS directory's train split
        yield from (e for e in _rlds(d, False, []) if e.split == "train")


def iter_episodes(path: Path, *, depth: int = 5, frames: bool = False,
                  problems: list[str] | None = None) -> tuple[DataKind, Iterator[Ep]]:
    """(kind, episodes) of a raw, numpy, TFRecord or RLDS tree. Unreadable trajectories go to `problems`.

    Raises:
        DataToolsError: not a directory; an RLDS directory whose features bdv2 cannot read.
    """
    from .summary import DataKind, detect_kind

    if not path.is_dir():
        raise DataToolsError(f"{path}: not a directory")
    problems = [] if problems is None else problems
    kind = detect_kind(path)
    match kind:
        case DataKind.RLDS:
            return kind, _rlds(path, frames, problems)
        case DataKind.TFRECORD:
            return kind, _tfrecord(path, frames)
        case DataKind.NUMPY:
            return kind, _numpy(path, frames, problems)
        case DataKind.RAW:
            return kind, _raw(path, depth, frames, problems)
        case _:
            assert_never(kind)
