"""`rlds-to-tfrecord`: an RLDS/TFDS dataset directory -> bdv2's TFRecord schema (schema.py), shard by shard.

Cameras. The schema (and the trainer's reader, schema.parse_example) has one image key, observations/images0,
so exactly one camera is converted: `image_<k>` for `cameras=(k,)`. Episodes whose chosen camera is blank in
every frame (the release's placeholder for a camera the episode does not have) are skipped and reported.

Output: `<output>/<dataset name>/{train,val}/out.tfrecord` when each split has one shard, else one output per input
shard, `<output>/<dataset name>/part<i>/{train,val}/out.tfrecord` (shard i of each split; resumable shard by
shard, atomic). Both are the layout the trainer and the original reader glob: `<dir>/{train,val}/out.tfrecord`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bdv2.fsutil import atomic_output, write_atomic

from .. import schema
from ..framing import first_record_sha256
from ..layout import WHOLE, Shard
from ..progress import ProgressSink, Report, Skipped
from .model import CameraSpecError, RldsDir, RldsFormatError, check_features, open_dir
from .read import (
    RawEpisode,
    check_episode,
    instructions,
    iter_shard,
    too_short,
    transition_actions,
)


def output_file(output_path: Path, rlds: RldsDir, split: str, shard_index: int) -> Path:
    """`<name>/<split>/out.tfrecord`, or `<name>/part<i>/<split>/out.tfrecord` when any split has several shards:
    the trainer (like the original) reads `<dir>/train/out.tfrecord` with its val sibling, at any depth."""
    if all(len(files) == 1 for files in rlds.shards.values()):
        return output_path / rlds.name / split / "out.tfrecord"
    return output_path / rlds.name / f"part{shard_index:05d}" / split / "out.tfrecord"


def episode_arrays(ep: RawEpisode, rlds: RldsDir, camera: int, shard: Path, index: int
                   ) -> dict[str, np.ndarray] | Skipped:
    """A decoded episode -> the schema's feature arrays (T = N - 1 transitions), or why it is skipped."""
    state, action = check_episode(ep, rlds, camera, shard, index)
    short = too_short(len(state))
    if short:
        return Skipped(ep.where, short)
    if bool(ep.values["blank"]):
        return Skipped(ep.where, f"camera image_{camera} is blank in every frame (the release's placeholder "
                                 "for a camera this episode does not have)")
    # Step t pairs o_t with a_t; the last step's action (zero in the full release) has no next observation.
    return schema.make_arrays(ep.values["images"], state, transition_actions(action),
                              instructions(ep.values["language"]))


def _convert_shard(rlds: RldsDir, split: str, shard_index: int, final: Path, camera: int, im_size: int | None,
                   num_workers: int, report: Report, progress: ProgressSink) -> None:
    import tensorflow as tf

    shard = rlds.shards[split][shard_index]
    count = 0
    with atomic_output(final) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
        for index, ep in enumerate(iter_shard(rlds, shard, camera, im_size=im_size, num_workers=num_workers)):
            count += 1
            arrays = episode_arrays(ep, rlds, camera, shard, index)
            if isinstance(arrays, Skipped):
                report.skipped.append(arrays)
                progress.advance(1, 0)
                continue
            writer.write(schema.encode_example(arrays))
            report.trajectories += 1
            report.frames += len(arrays["actions"])
            progress.advance(1, len(arrays["actions"]))
        expected = rlds.lengths[split][shard_index]
        if expected and count != expected:  # a shard cut exactly between two records reads without error
            raise RldsFormatError(f"{shard}: {count} episodes, dataset_info.json says {expected}; the shard is "
                                  "truncated: download it again")
    report.written.append(final)


def rlds_to_tfrecord(input_path: Path, output_path: Path, *, cameras: Sequence[int] = (0,),
                     im_size: int | None = None, num_workers: int = 1, overwrite: bool = False,
                     shard: Shard = WHOLE, progress: ProgressSink | None = None) -> Report:
    """RLDS/TFDS dataset dir -> `<output>/<name>/{train,val}/out*.tfrecord` in bdv2's schema, one Example per
    episode. Streams shard by shard; each output is written under a temporary name and renamed when complete;
    finished outputs are kept (resume) unless `overwrite`. `num_workers` threads parse and decode. `im_size`
    squashes frames to im_size x im_size (antialiased Lanczos-3); None keeps the release's size. `shard`: only
    that part of the input shard files (layout.Shard.select), for one task of a job array.

    Raises:
        InputLayoutError: not a TFDS directory, a listed shard missing.
        CameraSpecError: more than one camera.
        RldsFormatError: a missing or differently shaped feature, a truncated shard (naming the file).
    """
    started = time.perf_counter()
    progress = progress or ProgressSink()
    if len(cameras) != 1:
        raise CameraSpecError(f"cameras {list(cameras)}: the schema holds one camera (observations/images0)")
    camera = cameras[0]
    rlds = open_dir(input_path)
    check_features(rlds, camera)
    report = Report(notes=list(rlds.notes))
    inputs = {path: (split, i) for split, files in rlds.shards.items() for i, path in enumerate(files)}
    todo = []
    for path in shard.select(list(inputs)):
        split, i = inputs[path]
        final = output_file(output_path, rlds, split, i)
        if final.exists() and not overwrite:
            report.existing.append(final)
        else:
            todo.append((split, i, final))
    progress.start(sum(rlds.lengths[split][i] for split, i, _ in todo))
    for split, i, final in todo:
        _convert_shard(rlds, split, i, final, camera, im_size, num_workers, report, progress)
    write_atomic(output_path / rlds.name / SOURCE_FILE, json.dumps(source_record(rlds, camera, im_size), indent=2))
    report.seconds = time.perf_counter() - started
    return report


SOURCE_FILE = "source.json"
"""Written beside the converted splits: what they were converted from (`bdv2 data identify` reads it)."""


def source_record(rlds: RldsDir, camera: int, im_size: int | None) -> dict[str, Any]:
    """The facts of the input that identify compares with the known releases: its name, version, splits
    (shards, episodes), feature keys and the sha256 of each split's first record."""
    first = {split: first_record_sha256(files[0]) for split, files in rlds.shards.items() if files}
    try:
        description = str(json.loads((rlds.path / "dataset_info.json").read_text()).get("description", ""))
    except (OSError, ValueError):
        description = ""
    return {"converter": "rlds-to-tfrecord", "input": str(rlds.path), "dataset_name": rlds.name,
            "description": description,
            "version": rlds.path.name, "camera": camera, "im_size": im_size,
            "splits": {split: {"shards": len(files), "episodes": sum(rlds.lengths[split])}
                       for split, files in rlds.shards.items()},
            "features": sorted(rlds.features), "first_records": first}
