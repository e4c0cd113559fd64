"""The BridgeData TFRecord schema, defined once: used by the converters here and by the trainer's reader.

One `tf.train.Example` per trajectory; every feature is a bytes_list holding one `tf.io.serialize_tensor`
of the array below (the format of the original `bridgedata_numpy_to_tfrecord.py`, which
`BridgeDataset` reads; both in https://github.com/rail-berkeley/bridge_data_v2). T = transitions in the
trajectory, S = image side, L >= 1 instructions.

    observations/images0       uint8   [T, S, S, 3]   camera 0, frames 0..T-1
    observations/state         float32 [T, 7]         full_state 0..T-1
    next_observations/images0  uint8   [T, S, S, 3]   frames 1..T
    next_observations/state    float32 [T, 7]         full_state 1..T
    language                   string  [L]            [""] when unlabeled
    actions                    float32 [T, 7]         raw policy actions
    terminals                  bool    [T]            all False (the original ignores out.npy's terminals)
    truncates                  bool    [T]            False except the last

TensorFlow is imported only inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .trajectory import transitions

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class Feature:
    dtype: str
    """numpy dtype name; the TF dtype has the same name."""
    rank: int


FEATURES: dict[str, Feature] = {
    "observations/images0": Feature("uint8", 4),
    "observations/state": Feature("float32", 2),
    "next_observations/images0": Feature("uint8", 4),
    "next_observations/state": Feature("float32", 2),
    "language": Feature("str", 1),
    "actions": Feature("float32", 2),
    "terminals": Feature("bool", 1),
    "truncates": Feature("bool", 1),
}
TIME_MAJOR = tuple(k for k in FEATURES if k != "language")
"""Features whose first axis is T."""


def make_arrays(
    images0: np.ndarray, state: np.ndarray, actions: np.ndarray, language: list[str]
) -> dict[str, np.ndarray]:
    """The feature arrays of one trajectory from its frames and states (T + 1 rows) and actions (T rows)."""
    length = len(actions)
    if len(images0) != length + 1 or len(state) != length + 1:
        raise ValueError(f"need T + 1 frames and states for T = {length} actions, got {len(images0)} and "
                         f"{len(state)}")
    arrays = transitions(np.ascontiguousarray(images0, dtype=np.uint8), np.asarray(state, dtype=np.float32),
                         np.asarray(actions, dtype=np.float32).reshape(length, -1), length)
    # An all-"confidence" lang.txt gives no instruction; the original then writes an empty *float* tensor
    # that the trainer cannot parse as a string, so bdv2 writes the unlabeled marker instead.
    arrays["language"] = np.asarray(language if language else [""], dtype=object)
    return {k: arrays[k] for k in FEATURES}  # the schema's order


def arrays_from_numpy_record(record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Feature arrays from one out.npy trajectory dict (lists of per-step dicts), as numpy-to-tfrecord does."""
    obs, next_obs = record["observations"], record["next_observations"]
    images0 = np.stack([o["images0"] for o in obs] + [next_obs[-1]["images0"]]) if obs else np.zeros(0)
    state = np.stack([o["state"] for o in obs] + [next_obs[-1]["state"]]) if obs else np.zeros(0)
    arrays = make_arrays(images0, state, np.asarray(record["actions"]), list(record["language"]))
    # next_observations is stored separately in out.npy; keep it rather than trusting the shift.
    arrays["next_observations/images0"] = np.stack([o["images0"] for o in next_obs]).astype(np.uint8)
    arrays["next_observations/state"] = np.stack([o["state"] for o in next_obs]).astype(np.float32)
    return arrays


def encode_example(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialize one trajectory's feature arrays into a tf.train.Example (bytes)."""
    import tensorflow as tf

    feature = {}
    for key, spec in FEATURES.items():
        value = arrays[key]
        tensor = tf.constant(list(value), dtype=tf.string) if spec.dtype == "str" else tf.constant(value)
        payload = tf.io.serialize_tensor(tensor).numpy()
        feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[payload]))
    # deterministic=True: protobuf map order otherwise follows per-process string hashing, and two runs
    # would write different bytes for the same trajectories (resume and --shard promise identical files).
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def _tf_dtype(spec: Feature) -> tf.DType:
    import tensorflow as tf

    return tf.string if spec.dtype == "str" else tf.as_dtype(spec.dtype)


def parse_example(serialized: tf.Tensor, load_language: bool = True) -> dict[str, tf.Tensor]:
    """Parse one serialized Example into flat feature tensors (graph-compatible: usable in tf.data.map)."""
    import tensorflow as tf

    keys = [k for k in FEATURES if load_language or k != "language"]
    raw = tf.io.parse_single_example(serialized, {k: tf.io.FixedLenFeature([], tf.string) for k in keys})
    return {k: tf.io.parse_tensor(raw[k], _tf_dtype(FEATURES[k])) for k in keys}


def read_tfrecord(path: Path) -> Iterator[dict[str, np.ndarray]]:
    """Eagerly read every trajectory of one TFRecord file as numpy arrays (language as a list of str).

    Raises:
        CorruptRecordError: the file is truncated or corrupt (raised where reading stopped).
    """
    from .records import read_records

    for serialized in read_records(path):
        parsed = parse_example(serialized)
        out = {k: v.numpy() for k, v in parsed.items()}
        out["language"] = [s.decode("utf-8") for s in out["language"]]
        yield out


def check_arrays(arrays: Mapping[str, Any], where: str, im_size: int | None = None) -> list[str]:
    """Problems a trainer would choke on in one trajectory's arrays (empty list if none)."""
    problems = []
    lengths = {k: len(arrays[k]) for k in TIME_MAJOR}
    if len(set(lengths.values())) != 1:
        problems.append(f"{where}: mismatched lengths {lengths}")
    if len(arrays["language"]) == 0:
        problems.append(f"{where}: no language entry (the trainer cannot parse an empty list)")
    shape = tuple(np.shape(arrays["observations/images0"])[1:])
    if im_size is not None and shape != (im_size, im_size, 3):
        problems.append(f"{where}: images are {shape}, expected ({im_size}, {im_size}, 3)")
    return problems
