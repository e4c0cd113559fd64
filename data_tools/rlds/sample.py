"""A small RLDS/TFDS dataset written in code, shaped like the BridgeData V2 release (`bridge_dataset/1.0.0`), so
the RLDS reader, converter and trainer can be tested without downloading anything.

What it writes is what the release holds (a real one, cut short: `tests/debug_dataset/bridge_dataset/1.0.0/` in
https://github.com/octo-models/octo)::

    <out>/bridge_dataset/1.0.0/dataset_info.json        name, version, splits (shardLengths, filepathTemplate)
    <out>/bridge_dataset/1.0.0/features.json            the release's feature tree (see `features_tree`)
    <out>/bridge_dataset/1.0.0/bridge_dataset-train.tfrecord-00000-of-00002 ...

Each shard holds one tf.train.Example per episode with TFDS's flattened keys: `steps/<path>` holds the values
of all steps back to back (`steps/observation/image_<k>`: one JPEG per step; `steps/action`: steps x 7 floats;
`steps/language_embedding`: steps x 512 floats), `episode_metadata/<name>` one value per episode.

Cameras, as in the release: image_0 and image_1 are rendered in every episode, image_2 in even-numbered episodes
only, image_3 in none; a camera an episode does not have is a black placeholder frame
(`episode_metadata/has_image_<k>` says which). The last step's action is zero, as in the full release.

Deterministic: the same arguments give byte-identical files.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from bdv2.fsutil import atomic_output, write_atomic

from ..errors import DataToolsError

if TYPE_CHECKING:
    import tensorflow as tf

NAME = "bridge_dataset"
VERSION = "1.0.0"
N_CAMERAS = 4
EMBEDDING = 512
INSTRUCTIONS = ("put the carrot in the pot", "open the drawer", "flip the pot upright", "sweep the beans")
TFDS = "tensorflow_datasets.core.features."
EPISODES: Mapping[str, int] = MappingProxyType({"train": 6, "val": 3})
"""The default split sizes of `write_rlds_sample`."""


def has_camera(episode: int, camera: int) -> bool:
    """Whether `camera` is a real view in episode `episode` (else a black placeholder, as in the release)."""
    return camera < 2 or (camera == 2 and episode % 2 == 0)


def _tensor(shape: list[int], dtype: str, description: str) -> dict[str, Any]:
    kind = "tensor_feature.Tensor" if shape else "scalar.Scalar"
    return {"pythonClassName": TFDS + kind, "description": description,
            "tensor": {"shape": {"dimensions": [str(d) for d in shape]} if shape else {}, "dtype": dtype,
                       "encoding": "none"}}


def _text(description: str) -> dict[str, Any]:
    return {"pythonClassName": TFDS + "text_feature.Text", "text": {}, "description": description}


def _dict(features: dict[str, Any]) -> dict[str, Any]:
    return {"pythonClassName": TFDS + "features_dict.FeaturesDict", "featuresDict": {"features": features}}


def features_tree(image_size: int) -> dict[str, Any]:
    """features.json: the release's tree (steps as a nested Dataset, episode_metadata) for this image size."""
    image = {"pythonClassName": TFDS + "image_feature.Image", "description": "Main camera RGB observation.",
             "image": {"shape": {"dimensions": [str(image_size), str(image_size), "3"]}, "dtype": "uint8",
                       "encodingFormat": "jpeg"}}
    observation = {f"image_{k}": image for k in range(N_CAMERAS)}
    observation["state"] = _tensor([7], "float32", "Robot state, consists of [7x robot joint angles, "
                                                   "2x gripper position, 1x door opening angle].")
    steps = _dict({
        "observation": _dict(observation),
        "action": _tensor([7], "float32", "Robot action, consists of [7x joint velocities, 2x gripper "
                                          "velocities, 1x terminate episode]."),
        "language_instruction": _text("Language Instruction."),
        "language_embedding": _tensor([EMBEDDING], "float32", "Kona language embedding. See "
                                      "https://tfhub.dev/google/universal-sentence-encoder-large/5"),
        "is_first": _tensor([], "bool", "True on first step of the episode."),
        "is_last": _tensor([], "bool", "True on last step of the episode."),
        "is_terminal": _tensor([], "bool", "True on last step of the episode if it is a terminal step, True for "
                                           "demos."),
        "reward": _tensor([], "float32", "Reward if provided, 1 on final step for demos."),
        "discount": _tensor([], "float32", "Discount if provided, default to 1."),
    })
    metadata = {"file_path": _text("Path to the original data file."),
                "episode_id": _tensor([], "int32", "ID of episode in file_path."),
                "has_language": _tensor([], "bool", "True if language exists in observation, otherwise empty "
                                                    "string.")}
    for k in range(N_CAMERAS):
        metadata[f"has_image_{k}"] = _tensor([], "bool", f"True if image{k} exists in observation, otherwise "
                                                         "dummy value.")
    return _dict({
        "steps": {"pythonClassName": TFDS + "dataset_feature.Dataset",
                  "sequence": {"feature": steps, "length": "-1"}},
        "episode_metadata": _dict(metadata),
    })


def shard_name(split: str, index: int, count: int) -> str:
    return f"{NAME}-{split}.tfrecord-{index:05d}-of-{count:05d}"


def _shard_lengths(episodes: int, shards: int) -> list[int]:
    count = max(1, min(shards, episodes))
    return [len(part) for part in np.array_split(np.arange(episodes), count)]


def dataset_info(lengths: dict[str, list[int]], num_bytes: dict[str, int] | None = None) -> dict[str, Any]:
    """dataset_info.json with the release's fields (``numBytes``: a split's serialized examples, without the
    TFRecord framing, as TFDS counts them)."""
    return {
        "citation": "Walke et al., BridgeData V2: A Dataset for Robot Learning at Scale, CoRL 2023",
        "description": "A synthetic sample shaped like the BridgeData V2 RLDS release (bdv2.data_tools.rlds_sample).",
        "fileFormat": "tfrecord",
        "moduleName": "bridge_dataset.bridge_dataset_dataset_builder",
        "name": NAME,
        "releaseNotes": {VERSION: "Initial release."},
        "splits": [{"filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", "name": split,
                    "numBytes": str((num_bytes or {}).get(split, 0)), "shardLengths": [str(n) for n in counts]}
                   for split, counts in lengths.items()],
        "version": VERSION,
    }


def _frame(rng: np.random.Generator, t: int, steps: int, size: int, camera: int) -> np.ndarray:
    """A size x size RGB scene: a table gradient, an object and a dark gripper moving towards it."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.empty((size, size, 3), np.float32)
    img[..., 0] = 150 + 60 * xs
    img[..., 1] = 110 + 40 * ys
    img[..., 2] = 70 + 30 * camera
    obj = rng.uniform(0.2, 0.8, size=2)
    img[(xs - obj[0]) ** 2 + (ys - obj[1]) ** 2 < 0.01] = rng.uniform(40, 255, size=3)
    frac = t / max(steps - 1, 1)
    grip = np.array([0.1, 0.1]) * (1 - frac) + obj * frac
    img[(abs(xs - grip[0]) < 0.06) & (abs(ys - grip[1]) < 0.08)] = (30, 30, 35)
    img += rng.normal(0, 4, size=(size, size, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def episode_example(seed: int, split_index: int, episode: int, *, steps: int, image_size: int,
                    language: bool) -> tf.train.Example:
    """One episode as TFDS flattens it: `steps/...` keys with every step's values back to back."""
    import tensorflow as tf

    rng = np.random.default_rng([seed, split_index, episode])
    action = np.concatenate([rng.normal(0, 0.01, size=(steps, 6)),
                             (np.arange(steps) < steps // 2).astype(np.float64)[:, None]], axis=1)
    action[-1] = 0  # the full release's last step carries a zero action
    state = np.zeros((steps, 7))
    state[0] = [0.3, 0.0, 0.1, 0.0, -0.1, 0.0, 1.0]
    for t in range(1, steps):
        state[t, :6] = state[t - 1, :6] + action[t - 1, :6]
        state[t, 6] = action[t - 1, 6]
    instruction = INSTRUCTIONS[(split_index * 7 + episode) % len(INSTRUCTIONS)] if language else ""
    embedding = (np.random.default_rng([seed, len(instruction), sum(instruction.encode())]).normal(0, 0.05, EMBEDDING)
                 if language else np.zeros(EMBEDDING))
    blank = _jpeg(np.zeros((image_size, image_size, 3), np.uint8))

    def floats(a: np.ndarray) -> tf.train.Feature:
        return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(a, np.float32).ravel().tolist()))

    def ints(values: list[int]) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    def strings(values: list[bytes]) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    feature = {
        "steps/action": floats(action),
        "steps/observation/state": floats(state),
        "steps/language_instruction": strings([instruction.encode()] * steps),
        "steps/language_embedding": floats(np.tile(embedding, steps)),
        "steps/is_first": ints([int(t == 0) for t in range(steps)]),
        "steps/is_last": ints([int(t == steps - 1) for t in range(steps)]),
        "steps/is_terminal": ints([int(t == steps - 1) for t in range(steps)]),
        "steps/reward": floats(np.arange(steps) == steps - 1),
        "steps/discount": floats(np.ones(steps)),
        "episode_metadata/file_path": strings([f"/data/bridge_data_v2/sample/{split_index}/out.npy".encode()]),
        "episode_metadata/episode_id": ints([episode]),
        "episode_metadata/has_language": ints([int(language)]),
    }
    for k in range(N_CAMERAS):
        real = has_camera(episode, k)
        feature[f"episode_metadata/has_image_{k}"] = ints([int(real)])
        frames = [_jpeg(_frame(np.random.default_rng([seed, split_index, episode, k]), t, steps, image_size, k))
                  if real else blank for t in range(steps)]
        feature[f"steps/observation/image_{k}"] = strings(frames)
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_rlds_sample(out: Path, *, episodes: Mapping[str, int] = EPISODES, steps: int = 8, image_size: int = 64,
                      seed: int = 0, shards_per_split: int = 2, language: bool = True) -> Path:
    """Write a release-shaped RLDS dataset under `out` and return its directory, `<out>/bridge_dataset/1.0.0`.

    Args:
        episodes: split name -> episode count, in the order the splits are written (default {"train": 6, "val": 3}).
        steps: steps per episode (the converters make steps - 1 transitions of each).
        image_size: frames are image_size x image_size x 3 JPEGs.
        shards_per_split: TFRecord shards per split (fewer when a split has fewer episodes).
        language: label every episode with an instruction (else empty strings, has_language false).

    Raises:
        DataToolsError: the dataset directory exists and is not empty, or steps < 1.
    """
    import tensorflow as tf

    if steps < 1:
        raise DataToolsError(f"steps={steps}: an episode needs at least one step")
    root = out / NAME / VERSION
    if root.exists() and any(root.iterdir()):
        raise DataToolsError(f"{root}: not empty; the RLDS sample is written into a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    lengths = {split: _shard_lengths(n, shards_per_split) for split, n in episodes.items()}
    num_bytes = dict.fromkeys(lengths, 0)
    for split_index, (split, counts) in enumerate(lengths.items()):
        first = 0
        for shard, count in enumerate(counts):
            with atomic_output(root / shard_name(split, shard, len(counts))) as tmp, \
                    tf.io.TFRecordWriter(str(tmp)) as writer:
                for episode in range(first, first + count):
                    example = episode_example(seed, split_index, episode, steps=steps, image_size=image_size,
                                              language=language)
                    record = example.SerializeToString(deterministic=True)
                    writer.write(record)
                    num_bytes[split] += len(record)
            first += count
    write_atomic(root / "features.json", json.dumps(features_tree(image_size), indent=2) + "\n")
    write_atomic(root / "dataset_info.json", json.dumps(dataset_info(lengths, num_bytes), indent=2) + "\n")
    return root
