"""Reading RLDS episodes with TensorFlow (tf.io.parse_single_example from a spec built from the dataset's own
features.json, without tensorflow-datasets): per-shard streaming for the converter, light facts for
inspect/stats, and `episode_dataset`, the tf.data pipeline the trainer reads a release with in place.

TFDS flattens an episode into one Example: per-step features are keyed `steps/<path>` and hold the values of
all N steps back to back (images: N encoded JPEGs; `action`: N * 7 floats).

Alignment (`transition_actions`, the one rule every reader here and the converter use). RLDS step t holds
observation o_t and the action a_t taken from it (the release's last step carries a zero action; episodes cut
short, like the octo debug sample's, carry a real one). The bdv2 schema, like the raw converters, stores
T = N - 1 transitions: observations o_0..o_{N-2}, next observations o_1..o_{N-1}, actions a_0..a_{N-2}. The last
step's action is dropped in both cases, since no observation follows it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import InputLayoutError
from ..records import damage_from
from ..trajectory import transitions
from .model import (
    ACTION,
    ACTION_DIM,
    LANGUAGE,
    STATE,
    RldsDamagedShardError,
    RldsDir,
    RldsFormatError,
    check_features,
    image_key,
    open_dir,
)

if TYPE_CHECKING:
    import tensorflow as tf

Steps = TypeVar("Steps")
LANGUAGE_EMBEDDING = "steps/language_embedding"
MIN_STEPS = 2
"""An episode needs two observations to make one transition; shorter ones are skipped (converter,
episode_dataset) and flagged (inspect)."""


def too_short(n_steps: int) -> str | None:
    """Why an episode of `n_steps` steps gives no transition, or None: the one length rule for RLDS episodes."""
    if n_steps < MIN_STEPS:
        return f"{n_steps} step(s): an episode needs two observations to make one transition"
    return None


def transition_actions(action: Steps) -> Steps:
    """Per-step actions [N, 7] -> the T = N - 1 transitions' actions: a_t pairs with o_t and o_{t+1}; the last
    step's action has no next observation and is dropped. Plain slicing, so numpy arrays (converter,
    inspect/stats) and tf tensors (episode_dataset) take the same rule."""
    return action[:-1]  # type: ignore[index]


def _parse_fn(rlds: RldsDir, camera: int, decode: bool, im_size: int | None,
              embedding: bool = False) -> Callable[[tf.Tensor], Any]:
    """The tf.data map: one serialized episode -> its per-step values, flat as stored (checked in Python).

    decode=False returns the first encoded frame instead of decoded frames (for inspect/stats); embedding=True
    also reads the per-step language embeddings.
    """
    import tensorflow as tf

    img = image_key(camera)
    spec = {  # allow_missing: a missing key parses as empty and is reported by check_episode with the file and record
        img: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
        STATE: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
        ACTION: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
        LANGUAGE: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
    }
    if embedding:
        spec[LANGUAGE_EMBEDDING] = tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True)
    jpeg = rlds.features[img].encoding == "jpeg"

    def decode_one(data: tf.Tensor) -> tf.Tensor:
        # INTEGER_ACCURATE: the same IDCT as PIL's default, so frames do not depend on the decoder's speed setting
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE") if jpeg else \
            tf.io.decode_png(data, channels=3)

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        p = tf.io.parse_single_example(serialized, spec)
        out = {"state": p[STATE], "action": p[ACTION], "language": p[LANGUAGE], "n_images": tf.size(p[img])}
        if embedding:
            out["embedding"] = p[LANGUAGE_EMBEDDING]
        if not decode:
            out["first_image"] = p[img][:1]
            return out
        frames = tf.map_fn(decode_one, p[img], fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
        out["decoded_shape"] = tf.shape(frames)[1:]
        out["blank"] = tf.equal(tf.reduce_max(tf.concat([tf.reshape(frames, [-1]), [0]], 0)), 0)
        if im_size is not None:
            frames = tf.cond(tf.reduce_all(tf.equal(tf.shape(frames)[1:3], im_size)), lambda: frames,
                             lambda: _resize(frames, im_size))
        out["images"] = frames
        return out

    return parse


def _resize(frames: tf.Tensor, im_size: int) -> tf.Tensor:
    """Squash to im_size x im_size with antialiased Lanczos-3, rounded (how the release itself was resized)."""
    import tensorflow as tf

    resized = tf.image.resize(tf.cast(frames, tf.float32), [im_size, im_size], method="lanczos3", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def _describe_value(shard: Path, index: int, key: str) -> str:
    """Error path only: what record `index` really holds under `key` ('missing' or 'K values')."""
    import tensorflow as tf

    for raw in tf.data.TFRecordDataset(str(shard)).skip(index).take(1):
        feature = tf.train.Example.FromString(raw.numpy()).features.feature
        if key not in feature:
            return "is missing"
        kind = feature[key].WhichOneof("kind")
        return f"has {len(getattr(feature[key], kind).value)} values ({kind})" if kind else "is empty"
    return "cannot be re-read"


@dataclass
class RawEpisode:
    """One parsed episode, flat as stored; `check` turns it into [N, 7] arrays or raises."""

    where: str
    values: dict[str, np.ndarray]

    def steps(self) -> int:
        return int(self.values["n_images"])


def check_episode(ep: RawEpisode, rlds: RldsDir, camera: int, shard: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of every feature against the episode's step count -> (state [N, 7], action [N, 7])."""
    v = ep.values
    n = int(v["n_images"]) or len(v["language"])
    counts = {image_key(camera): (int(v["n_images"]), 1), STATE: (len(v["state"]), ACTION_DIM),
              ACTION: (len(v["action"]), ACTION_DIM), LANGUAGE: (len(v["language"]), 1)}
    for key, (count, width) in counts.items():
        if count != n * width:
            what = _describe_value(shard, index, key)
            expected = f"{n} steps x {width}" if width > 1 else f"one per step ({n} steps)"
            raise RldsFormatError(f"{ep.where}: feature {key!r} {what}; expected {expected} as "
                                  f"{rlds.features_file.name} declares")
    declared = rlds.features[image_key(camera)].shape
    if "decoded_shape" in v and n:
        shape = tuple(int(x) for x in v["decoded_shape"])
        if any(d is not None and d != s for d, s in zip(declared, shape, strict=True)):
            raise RldsFormatError(f"{ep.where}: feature {image_key(camera)!r} decodes to {list(shape)}; "
                                  f"{rlds.features_file.name} declares {list(declared)}")
    return v["state"].reshape(n, ACTION_DIM), v["action"].reshape(n, ACTION_DIM)


def instructions(language: np.ndarray) -> list[str]:
    """Per-step instructions -> the distinct non-empty ones, in order; [''] (unlabeled) when there are none."""
    seen = dict.fromkeys(s.decode("utf-8").strip() for s in language)
    return [s for s in seen if s] or [""]


def iter_shard(rlds: RldsDir, shard: Path, camera: int, *, decode: bool = True, im_size: int | None = None,
               num_workers: int = 1) -> Iterator[RawEpisode]:
    """Stream the episodes of one shard through tf.data (parse + decode in `num_workers` threads, in order).

    Raises:
        RldsFormatError: a truncated or corrupt shard, an undecodable frame, a feature of the wrong type.
    """
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(str(shard)).map(_parse_fn(rlds, camera, decode, im_size),
                                                 num_parallel_calls=max(num_workers, 1), deterministic=True)
    index = 0
    try:
        for values in ds.prefetch(2).as_numpy_iterator():
            yield RawEpisode(f"{shard}[{index}]", values)
            index += 1
    except tf.errors.DataLossError as e:
        damage = damage_from(shard, index, e)
        raise RldsDamagedShardError(damage.describe(fix="download this shard again (a file of the TFDS "
                                                        "release: compare its size with the published one)")) from None
    except tf.errors.InvalidArgumentError as e:
        # parse_single_example names the key in its message ("Key: steps/action. Data types don't match")
        raise RldsFormatError(f"{shard}[{index}]: cannot parse the episode: {e.message.splitlines()[0]}") from None


@dataclass(frozen=True)
class EpisodeFacts:
    """What inspect/stats need from one episode, read without decoding frames."""

    dataset: str
    split: str
    where: str
    image_shape: tuple[int, ...]
    language: list[str]
    state: np.ndarray
    """[N, 7] = [T + 1, 7]"""
    actions: np.ndarray
    """[T, 7]: the last step's action dropped, as in conversion"""


def iter_facts(path: Path, camera: int = 0, problems: list[str] | None = None,
               damaged: list[str] | None = None) -> Iterator[EpisodeFacts]:
    """Every episode of the train and val splits, light (one JPEG header per episode). With ``damaged``, a
    truncated or corrupt shard is listed there (one line each) and the next shard is read.

    Raises:
        InputLayoutError, RldsFormatError: as `rlds_to_tfrecord` (a damaged shard only without ``damaged``).
    """
    from PIL import Image

    rlds = open_dir(path)
    check_features(rlds, camera)
    if problems is not None:
        problems.extend(rlds.notes)
    for split, files in rlds.shards.items():
        for shard in files:
            try:
                for index, ep in enumerate(iter_shard(rlds, shard, camera, decode=False)):
                    state, action = check_episode(ep, rlds, camera, shard, index)
                    shape: tuple[int, ...] = ()
                    if len(ep.values["first_image"]):
                        with Image.open(io.BytesIO(ep.values["first_image"][0])) as im:  # header only
                            shape = (im.height, im.width, len(im.getbands()))
                    yield EpisodeFacts(rlds.name, split, ep.where, shape, instructions(ep.values["language"]),
                                       state, transition_actions(action))
            except RldsDamagedShardError as e:
                if damaged is None:
                    raise
                damaged.append(str(e))


def _embedding_dim(rlds: RldsDir) -> int:
    d = rlds.features.get(LANGUAGE_EMBEDDING)
    if d is None or not d.per_step or d.kind != "tensor" or d.dtype != "float32" or len(d.shape) != 1 \
            or d.shape[0] is None:
        what = "is missing" if d is None else f"is {d.dtype} {list(d.shape)}"
        raise RldsFormatError(f"{rlds.features_file}: feature {LANGUAGE_EMBEDDING!r} {what}; language-conditioned "
                              "training needs a per-step float32 [E] embedding, or a text encoder for the text")
    return int(d.shape[0])


def _instruction_embeddings(v: dict[str, tf.Tensor], dim: int) -> tf.Tensor:
    """[L, E]: the stored embedding of each distinct non-empty instruction (at its first step), in the order
    episode_dataset lists them; the first step's embedding for an unlabeled episode."""
    import tensorflow as tf

    per_step = tf.reshape(v["embedding"], [-1, dim])  # [N, E]
    text = tf.strings.strip(v["language"])  # [N]
    unique = tf.unique(text)
    first = tf.math.unsorted_segment_min(tf.range(tf.size(text)), unique.idx, tf.size(unique.y))  # [U]
    first = tf.boolean_mask(first, tf.strings.length(unique.y) > 0)
    return tf.gather(per_step, tf.cond(tf.size(first) > 0, lambda: first, lambda: tf.zeros([1], tf.int32)))


def episode_dataset(path: Path, split: str, camera: int = 0, im_size: int | None = None,
                    num_parallel_calls: int | None = None, language_embedding: bool = False) -> tf.data.Dataset:
    """An RLDS split read straight into schema.parse_example's form (same keys, dtypes and alignment as a
    converted file), so a training task can point at the release without copying it. language_embedding=True
    adds "language_embedding" float32 [L, E]: the stored embedding of each instruction in "language" [L].

    Unlike the converter, format problems surface as TensorFlow errors, and skipped episodes (fewer than two
    steps, blank camera) are filtered silently: run `bdv2 data inspect` on the directory first.
    """
    import tensorflow as tf
    import tensorflow.experimental.numpy as tnp

    rlds = open_dir(path)
    check_features(rlds, camera)
    if split not in rlds.shards:
        raise InputLayoutError(f"{rlds.path}: no {split!r} split (have {sorted(rlds.shards)})")
    calls = num_parallel_calls or tf.data.AUTOTUNE
    dim = _embedding_dim(rlds) if language_embedding else 0
    parse = _parse_fn(rlds, camera, True, im_size, language_embedding)

    def to_schema(v: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        state = tf.reshape(v["state"], [-1, ACTION_DIM])
        action = transition_actions(tf.reshape(v["action"], [-1, ACTION_DIM]))
        t = tf.shape(action)[0]
        lang = tf.unique(tf.strings.strip(v["language"])).y
        lang = tf.boolean_mask(lang, tf.strings.length(lang) > 0)
        lang = tf.cond(tf.size(lang) > 0, lambda: lang, lambda: tf.constant([""]))
        extra = {"language_embedding": _instruction_embeddings(v, dim)} if language_embedding else {}
        return {**transitions(v["images"], state, action, t, tnp), "language": lang, **extra}

    ds = tf.data.TFRecordDataset([str(f) for f in rlds.shards[split]])
    ds = ds.map(parse, num_parallel_calls=calls, deterministic=True)
    ds = ds.filter(lambda v: tf.logical_and(v["n_images"] >= MIN_STEPS, tf.logical_not(v["blank"])))
    return ds.map(to_schema, num_parallel_calls=calls, deterministic=True)
