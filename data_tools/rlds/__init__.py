"""The RLDS/TFDS release of BridgeData V2 (`bridge_dataset`, also in Open X-Embodiment): read it in place and
convert it into bdv2's TFRecord schema (schema.py), without tensorflow-datasets.

This package's face names what it offers; the code lives in four modules:

    model.py     the dataset directory: dataset_info.json, features.json, shard files, checks (no TF)
    read.py      parsing episodes with tf.io, their alignment to transitions, inspect/stats facts,
                 `episode_dataset` (the trainer's in-place reader)
    convert.py   `rlds_to_tfrecord` (`bdv2 data rlds-to-tfrecord`)
    sample.py    `write_rlds_sample`: a small dataset shaped like the release, for tests and demos
"""

from __future__ import annotations

from .convert import episode_arrays, output_file, rlds_to_tfrecord
from .model import (
    ACTION,
    ACTION_DIM,
    LANGUAGE,
    STATE,
    VAL_SPLITS,
    CameraSpecError,
    Declared,
    RldsDir,
    RldsFormatError,
    check_features,
    dataset_dirs,
    find_dataset_dir,
    flatten_features,
    image_key,
    is_rlds_dir,
    open_dir,
    parse_cameras,
    shard_names,
)
from .read import (
    EpisodeFacts,
    RawEpisode,
    check_episode,
    episode_dataset,
    instructions,
    iter_facts,
    iter_shard,
    too_short,
    transition_actions,
)
from .sample import write_rlds_sample

__all__ = [
    "ACTION", "ACTION_DIM", "LANGUAGE", "STATE", "VAL_SPLITS", "CameraSpecError", "Declared", "EpisodeFacts",
    "RawEpisode", "RldsDir", "RldsFormatError", "check_episode", "check_features", "dataset_dirs", "episode_arrays",
    "episode_dataset", "find_dataset_dir", "flatten_features", "image_key", "instructions", "is_rlds_dir",
    "iter_facts", "iter_shard", "open_dir", "output_file", "parse_cameras", "rlds_to_tfrecord", "shard_names",
    "too_short", "transition_actions", "write_rlds_sample",
]
