"""The three conversions: raw -> numpy, numpy -> TFRecord, and raw -> TFRecord directly (streaming).

Each is one function returning a `Report` (progress.py). Work is parallel in spawned worker processes:
over trajectories for raw inputs, where workers read and decode without importing TensorFlow and the parent
serializes and writes the TFRecords; over out.npy files for numpy inputs, where each worker writes its own
out.tfrecord (and so imports TensorFlow). Every output is written under a temporary name and renamed when
complete (bdv2.fsutil.atomic_output), and existing outputs are skipped unless `overwrite`, so an interrupted
run is resumed by running it again.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bdv2.fsutil import atomic_output
from bdv2.paths import AnyPath, as_path

from . import layout, schema
from .errors import BadTrajectory, DataToolsError, ImageSizeError
from .layout import SPLITS, WHOLE, Shard, SplitTask
from .progress import ProgressSink, Report, Skipped, default_workers
from .raw import Episode, ResizeMode, load_npy, read_trajectory

__all__ = [  # Report, Skipped and ProgressSink live in progress.py; imported from here too
    "WHOLE", "ProgressSink", "Report", "Skipped", "default_workers", "numpy_record", "numpy_to_tfrecord",
    "parallel_map", "raw_to_numpy", "raw_to_tfrecord",
]

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(fn: Callable[[T], R], items: Iterable[T], num_workers: int) -> Iterator[R]:
    """Ordered map over worker processes (inline when num_workers <= 1).

    Workers are spawned, not forked: the parent may have imported TensorFlow, whose threads do not
    survive a fork.
    """
    if num_workers <= 1:
        yield from map(fn, items)
        return
    with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
        yield from pool.imap(fn, items, chunksize=1)


# ---------------------------------------------------------------------------------------------- raw inputs

@dataclass(frozen=True)
class _Job:
    task: int
    split: str
    traj: Path
    shift: bool
    im_size: int
    target: str
    """"numpy" (out.npy record, every camera) or "tfrecord" (feature arrays, images0 only)."""
    mode: ResizeMode


def numpy_record(ep: Episode) -> dict[str, Any]:
    """One trajectory in the original out.npy form: lists of per-step dicts."""
    def step(t: int) -> dict[str, Any]:
        return {**{cam: frames[t] for cam, frames in ep.images.items()},
                "state": ep.state[t], "time_stamp": ep.time_stamp[t]}

    return {
        "observations": [step(t) for t in range(ep.length)],
        "next_observations": [step(t + 1) for t in range(ep.length)],
        "actions": list(ep.actions),
        "terminals": [0] * ep.length,
        "language": ep.language,
    }


def _run_job(job: _Job) -> tuple[_Job, Any]:
    """Worker: read one trajectory -> (job, payload or Skipped). Errors come back as data, with the path."""
    try:
        ep = read_trajectory(job.traj, im_size=job.im_size, latency_shift=job.shift,
                             cameras="all" if job.target == "numpy" else "first", mode=job.mode)
    except BadTrajectory as e:
        return job, Skipped(e.path, e.reason)
    if job.target == "numpy":
        return job, numpy_record(ep)
    return job, schema.make_arrays(ep.images["images0"], ep.state, np.asarray(ep.actions), ep.language)


def _plan_raw(
    input_path: Path, output_path: Path, depth: int, train_proportion: float, seed: int, shard: Shard,
    filename: str, overwrite: bool, report: Report,
) -> list[SplitTask]:
    """The raw task dirs this run must convert; the others are recorded in the report."""
    todo = []
    for task_dir in shard.select(layout.find_raw_tasks(input_path, depth)):
        task = layout.plan_raw_task(task_dir, input_path, depth, train_proportion, seed)
        report.notes.extend(task.notes)
        finals = [output_path / task.out_rel / s / filename for s in SPLITS]
        if not overwrite and all(f.exists() for f in finals):
            report.existing.extend(finals)
        elif not task.train or not task.val:
            # The original drops such a task silently, after creating empty dirs; here it is reported.
            report.dropped.append(Skipped(str(task_dir), f"{len(task.train)} train and {len(task.val)} val "
                                          "trajectories: both splits need at least one (see --train_proportion)"))
        else:
            todo.append(task)
    return todo


def _convert_raw(
    target: str, input_path: Path, output_path: Path, *, depth: int, num_workers: int, train_proportion: float,
    im_size: int, seed: int, overwrite: bool, shard: Shard, mode: ResizeMode, progress: ProgressSink,
) -> Report:
    started = time.perf_counter()
    report = Report()
    filename = "out.npy" if target == "numpy" else "out.tfrecord"
    tasks = _plan_raw(input_path, output_path, depth, train_proportion, seed, shard, filename, overwrite, report)
    jobs = [_Job(i, split, traj, shift, im_size, target, mode)
            for i, task in enumerate(tasks) for split in SPLITS for traj, shift in getattr(task, split)]
    progress.start(len(jobs))
    # Jobs come back in order, so each task's results are one run of the stream.
    for index, results in groupby(parallel_map(_run_job, jobs, num_workers), key=lambda r: r[0].task):
        task = tasks[index]
        _write_task(target, output_path / task.out_rel / "{split}" / filename, task.task_dir, results, report,
                    progress)
    report.seconds = time.perf_counter() - started
    return report


class _NoSplitLeft(Exception):
    """Raised inside a task's outputs block: leave them unwritten (their temporary files are removed)."""


def _write_task(target: str, template: Path, task_dir: Path, results: Iterable[tuple[_Job, Any]], report: Report,
                progress: ProgressSink) -> None:
    """One task dir's train and val outputs, each written under its temporary name (fsutil.atomic_output) and
    both renamed at the end, only if every split got a trajectory."""
    finals = {s: as_path(str(template).replace("{split}", s)) for s in SPLITS}  # output_path may be a URL
    counts = dict.fromkeys(SPLITS, 0)
    records: dict[str, list[Any]] = {s: [] for s in SPLITS}  # numpy: out.npy is one pickle, held in memory
    writers: dict[str, Any] = {}
    try:
        with ExitStack() as stack:
            for job, payload in results:
                if isinstance(payload, Skipped):
                    report.skipped.append(payload)
                    progress.advance(1, 0)
                    continue
                counts[job.split] += 1
                if target == "numpy":
                    records[job.split].append(payload)
                else:
                    if job.split not in writers:
                        writers[job.split] = _open_writer(stack, finals[job.split])
                    writers[job.split].write(schema.encode_example(payload))
                report.trajectories += 1
                report.frames += len(payload["actions"])
                progress.advance(1, len(payload["actions"]))
            if not all(counts.values()):
                raise _NoSplitLeft
            if target == "numpy":
                for split, final in finals.items():
                    with stack.enter_context(atomic_output(final)).open("wb") as f:
                        np.save(f, np.array(records[split] + [None], dtype=object)[:-1], allow_pickle=True)
    except _NoSplitLeft:
        report.dropped.append(Skipped(str(task_dir), f"no convertible trajectory left in a split {counts}"))
        return
    report.written.extend(finals.values())


def _open_writer(stack: ExitStack, final: AnyPath) -> Any:
    """A TFRecord writer on `final`'s temporary name; the stack closes it before renaming the file."""
    import tensorflow as tf

    tmp = stack.enter_context(atomic_output(final))
    return stack.enter_context(tf.io.TFRecordWriter(str(tmp)))


def raw_to_numpy(input_path: Path, output_path: Path, *, depth: int = 5, num_workers: int = 1,
                 train_proportion: float = 0.9, im_size: int = 128, seed: int = 0, overwrite: bool = False,
                 shard: Shard = WHOLE, progress: ProgressSink | None = None) -> Report:
    """Raw tree -> `<output>/<dirs>/{train,val}/out.npy`, the original intermediate (every camera, exact pixels).

    Raises:
        InputLayoutError: nothing at `depth` under input_path.
    """
    return _convert_raw("numpy", input_path, output_path, depth=depth, num_workers=num_workers,
                        train_proportion=train_proportion, im_size=im_size, seed=seed, overwrite=overwrite,
                        shard=shard, mode=ResizeMode.EXACT, progress=progress or ProgressSink())


def raw_to_tfrecord(input_path: Path, output_path: Path, *, depth: int = 5, num_workers: int = 1,
                    train_proportion: float = 0.9, im_size: int = 128, seed: int = 0, overwrite: bool = False,
                    shard: Shard = WHOLE, mode: ResizeMode = ResizeMode.DRAFT,
                    progress: ProgressSink | None = None) -> Report:
    """Raw tree -> `<output>/<dirs>/{train,val}/out.tfrecord` without the numpy intermediate.

    Streams trajectory by trajectory (memory: one trajectory per worker) and decodes camera 0 only, the
    one the TFRecord holds. With `mode=EXACT` the files equal raw_to_numpy + numpy_to_tfrecord's.
    """
    return _convert_raw("tfrecord", input_path, output_path, depth=depth, num_workers=num_workers,
                        train_proportion=train_proportion, im_size=im_size, seed=seed, overwrite=overwrite,
                        shard=shard, mode=mode, progress=progress or ProgressSink())


# -------------------------------------------------------------------------------------------- numpy inputs

@dataclass(frozen=True)
class _FileJob:
    npy: Path
    out: Path
    im_size: int | None


def _numpy_file_to_tfrecord(job: _FileJob) -> tuple[int, int, list[Skipped], Skipped | None]:
    """Worker: one out.npy -> one out.tfrecord. Returns (trajectories, frames, skipped, dropped)."""
    import tensorflow as tf

    try:
        records = load_npy(job.npy)
    except DataToolsError as e:
        return 0, 0, [], Skipped(str(job.npy), str(e))
    if len(records) == 0:
        return 0, 0, [], Skipped(str(job.npy), "empty out.npy (nothing to write)")
    skipped, n, frames = [], 0, 0
    try:
        with atomic_output(job.out) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
            for i, record in enumerate(records):
                where = f"{job.npy}[{i}]"
                try:
                    arrays = schema.arrays_from_numpy_record(record)
                except (KeyError, TypeError, ValueError, IndexError) as e:
                    skipped.append(Skipped(where, f"malformed trajectory: {type(e).__name__}: {e}"))
                    continue
                shape = arrays["observations/images0"].shape[1:]
                if job.im_size is not None and shape != (job.im_size, job.im_size, 3):
                    raise ImageSizeError(
                        f"{where}: images are {shape[0]}x{shape[1]}, not --im_size {job.im_size}; this "
                        f"out.npy was made with --im_size {shape[0]}: pass that, or re-run raw-to-numpy"
                    )
                problems = schema.check_arrays(arrays, where)
                if problems:
                    skipped.append(Skipped(where, "; ".join(problems)))
                    continue
                writer.write(schema.encode_example(arrays))
                n += 1
                frames += len(arrays["actions"])
    except ImageSizeError as e:
        return 0, 0, skipped, Skipped(str(job.npy), str(e))
    return n, frames, skipped, None


def numpy_to_tfrecord(input_path: Path, output_path: Path, *, depth: int = 5, num_workers: int = 1,
                      im_size: int | None = None, overwrite: bool = False, shard: Shard = WHOLE,
                      progress: ProgressSink | None = None) -> Report:
    """`<input>/<dirs>/{train,val}/out.npy` -> `<output>/<dirs>/{train,val}/out.tfrecord`, one Example per
    trajectory, as the original. `im_size`, when given, must equal the numpy images' size.
    """
    started = time.perf_counter()
    progress = progress or ProgressSink()
    report = Report()
    jobs = []
    for npy in shard.select(layout.find_numpy_files(input_path, depth)):
        out = layout.tfrecord_output(npy, output_path, depth)
        if out.exists() and not overwrite:
            report.existing.append(out)
        else:
            jobs.append(_FileJob(npy, out, im_size))
    progress.start(len(jobs))
    for job, (n, frames, skipped, dropped) in zip(
        jobs, parallel_map(_numpy_file_to_tfrecord, jobs, min(num_workers, len(jobs))), strict=True
    ):
        report.skipped.extend(skipped)
        if dropped:
            report.dropped.append(dropped)
        else:
            report.written.append(job.out)
        report.trajectories += n
        report.frames += frames
        progress.advance(1, frames)
    report.seconds = time.perf_counter() - started
    return report
