"""The RLDS/TFDS release of BridgeData V2 (`bridge_dataset`, also in Open X-Embodiment): read it in place and
convert it into bdv2's TFRecord schema (schema.py), without tensorflow-datasets.

This module is the public face; the code lives in three modules:

    rlds_model.py     the dataset directory: dataset_info.json, features.json, shard files, checks (no TF)
    rlds_read.py      parsing episodes with tf.io, their alignment to transitions, inspect/stats facts,
                      `episode_dataset` (the trainer's in-place reader)
    rlds_convert.py   `rlds_to_tfrecord` (`bdv2 data rlds-to-tfrecord`)

`bdv2.data_tools.rlds_sample` writes a small dataset shaped like the release, for tests and demos.
"""

from __future__ import annotations

from bdv2.data_tools.rlds_convert import episode_arrays, output_file, rlds_to_tfrecord
from bdv2.data_tools.rlds_model import (
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
)
from bdv2.data_tools.rlds_read import (
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

__all__ = [
    "ACTION", "ACTION_DIM", "LANGUAGE", "STATE", "VAL_SPLITS", "CameraSpecError", "Declared", "EpisodeFacts",
    "RawEpisode", "RldsDir", "RldsFormatError", "check_episode", "check_features", "dataset_dirs", "episode_arrays",
    "episode_dataset", "find_dataset_dir", "flatten_features", "image_key", "instructions", "is_rlds_dir",
    "iter_facts", "iter_shard", "open_dir", "output_file", "parse_cameras", "rlds_to_tfrecord", "too_short",
    "transition_actions",
]
