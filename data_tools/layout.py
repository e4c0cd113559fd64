"""The trees around trajectories: finding task dirs, dated dirs and trajectories, the seeded train/val split,
output paths and --shard partitioning. Pure file-system logic; no image decoding, no TF. The atomic writes
(`atomic_output`, `tmp_path`, the `.partial` suffix resume relies on) are bdv2.fsutil's, importable from here.

Paths follow the original scripts: with `--depth D`, raw task dirs are `input/<D-1 dirs>` (each directly
holding dated dirs); raw->numpy writes `output/<last max(D-1, 1) components>/{train,val}/out.npy`;
numpy->tfrecord reads `input/<D-1 dirs>/{train,val}/out.npy` and writes `output/<same>/{train,val}/out.tfrecord`.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from bdv2.fsutil import TMP_SUFFIX, atomic_output, tmp_path

from .errors import EmptyFolderError, InputLayoutError, ShardSpecError
from .raw import needs_latency_shift, parse_dated_dir

__all__ = [  # the atomic writes are bdv2.fsutil's; imported from here too
    "SPLITS", "TMP_SUFFIX", "Shard", "SplitTask", "atomic_output", "find_numpy_files", "find_raw_tasks",
    "glob_depth", "list_trajectories", "output_rel", "plan_raw_task", "split_trajectories", "tfrecord_output",
    "tmp_path",
]

SPLITS = ("train", "val")


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """'INDEX/COUNT' (e.g. '3/16', or $SLURM_ARRAY_TASK_ID/N) -> Shard; None -> the whole input."""
        if text is None:
            return cls()
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match or not int(match.group(1)) < int(match.group(2)):
            raise ShardSpecError(f"--shard {text!r}: expected INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/8")
        return cls(int(match.group(1)), int(match.group(2)))

    def select(self, items: list[Path]) -> list[Path]:
        """This shard's part of a sorted list: round robin, so parts are disjoint and cover everything."""
        return sorted(items)[self.index :: self.count]


WHOLE = Shard()
"""The default --shard: all of the input."""


@dataclass(frozen=True)
class SplitTask:
    """One raw task dir with its trajectories already assigned to train and val."""

    task_dir: Path
    out_rel: Path
    """Output subdirectory, relative to --output_path."""
    train: list[tuple[Path, bool]] = field(default_factory=list)
    """(trajectory dir, latency shift) pairs."""
    val: list[tuple[Path, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Dated dirs skipped (lmdb, not a date), reported in the summary."""


def glob_depth(root: Path, levels: int) -> list[Path]:
    """Directories exactly `levels` below root (root itself for 0), sorted."""
    found = [root]
    for _ in range(levels):
        found = [c for d in found for c in sorted(d.iterdir()) if c.is_dir()]
    return found


def output_rel(task_dir: Path, depth: int) -> Path:
    parts = task_dir.parts[-max(depth - 1, 1) :]
    return Path(*parts)


def check_not_empty(path: Path) -> None:
    """Raise EmptyFolderError when ``path`` is a directory with no file anywhere below it (hidden ones
    included), before any advice about its layout (--depth, --split) that would not apply."""
    if path.is_dir() and next((p for p in path.rglob("*") if _content(p)), None) is None:
        raise EmptyFolderError(path)


def _content(p: Path) -> bool:
    """A file, or a link (Python < 3.13's rglob does not descend into a linked folder, which is not empty)."""
    return p.is_file() or (isinstance(p, Path) and p.is_symlink())


def find_raw_tasks(input_path: Path, depth: int) -> list[Path]:
    if not input_path.is_dir():
        raise InputLayoutError(f"{input_path}: not a directory")
    check_not_empty(input_path)
    # "lmdb" anywhere in the path: some released folders are LMDB exports, not raw data (original quirk).
    tasks = [p for p in glob_depth(input_path, depth - 1) if "lmdb" not in str(p.relative_to(input_path))]
    if not tasks:
        raise InputLayoutError(f"{input_path}: no task directories {depth - 1} levels down; check --depth")
    return tasks


def list_trajectories(dated_dir: Path) -> list[Path]:
    """dated/raw/traj_group*/traj*, in numeric order (independent of file-system listing order)."""
    def key(p: Path) -> tuple[int, int]:
        nums = [int(x) for x in re.findall(r"\d+", p.parent.name + " " + p.name)]
        return (nums[0] if nums else 0, nums[-1] if nums else 0)

    raw = dated_dir / "raw"
    if not raw.is_dir():
        return []
    trajs = [t for g in raw.glob("traj_group*") if g.is_dir() for t in g.glob("traj*") if t.is_dir()]
    return sorted(trajs, key=key)


def split_trajectories(trajs: list[Path], train_proportion: float, seed: int, salt: str) -> tuple[list[Path], ...]:
    """Shuffle with a generator seeded by (seed, salt) and cut at int(n * proportion), as the original does
    per dated dir; the salt (the dated dir's relative path) makes each dir's order independent of the others
    and of sharding."""
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    order = list(trajs)
    random.Random(int.from_bytes(digest[:8], "little")).shuffle(order)
    cut = int(len(order) * train_proportion)
    return order[:cut], order[cut:]


def plan_raw_task(task_dir: Path, input_path: Path, depth: int, train_proportion: float, seed: int) -> SplitTask:
    """Assign every trajectory of one task dir to train or val."""
    task = SplitTask(task_dir, output_rel(task_dir, depth))
    for dated in sorted(p for p in task_dir.iterdir() if p.is_dir()):
        if "lmdb" in dated.name:
            task.notes.append(f"{dated}: skipped (an LMDB export, not raw data)")
            continue
        when = parse_dated_dir(dated.name)
        if when is None:
            task.notes.append(f"{dated}: skipped (not a YYYY-MM-DD_HH-MM-SS dated dir; check --depth)")
            continue
        shift = needs_latency_shift(when)
        train, val = split_trajectories(
            list_trajectories(dated), train_proportion, seed, str(dated.relative_to(input_path))
        )
        task.train.extend((t, shift) for t in train)
        task.val.extend((t, shift) for t in val)
    return task


def find_numpy_files(input_path: Path, depth: int) -> list[Path]:
    if not input_path.is_dir():
        raise InputLayoutError(f"{input_path}: not a directory")
    check_not_empty(input_path)
    files = [d / s / "out.npy" for d in glob_depth(input_path, depth - 1) for s in SPLITS]
    files = [f for f in files if f.is_file()]
    if not files:
        raise InputLayoutError(
            f"{input_path}: no {'/'.join(['*'] * (depth - 1) + ['{train,val}', 'out.npy'])} found; check --depth"
        )
    return files


def tfrecord_output(npy: Path, output_path: Path, depth: int) -> Path:
    """output/<last `depth` components of npy's directory>/out.tfrecord, as the original numpy->tfrecord."""
    return output_path.joinpath(*npy.parent.parts[-depth:]) / "out.tfrecord"
