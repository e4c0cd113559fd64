"""Reader of the RLDS/TFDS release of BridgeData V2 (`bridge_dataset`, also in Open X-Embodiment) and its
conversion into bdv2's TFRecord schema (schema.py), without tensorflow-datasets.

A TFDS dataset directory (e.g. `~/tensorflow_datasets/bridge_dataset/1.0.0/`)::

    dataset_info.json                       name, splits (name, shardLengths, filepathTemplate)
    features.json                           the feature tree: steps/{observation/{image_0..3, state}, action,
                                            language_instruction, is_first, ...}, episode_metadata/...
    bridge_dataset-train.tfrecord-00000-of-01024 ...   one tf.train.Example per episode

TFDS flattens an episode into one Example: per-step features are keyed `steps/<path>` and hold the values of
all N steps back to back (images: N encoded JPEGs; `action`: N * 7 floats). The Examples are parsed here with
`tf.io.parse_single_example` from a spec built from the dataset's own features.json.

Alignment. RLDS step t holds observation o_t and the action a_t taken from it (the release's last step carries
a zero action; episodes cut short, like the debug sample's, carry a real one). The bdv2 schema, like the raw
converters, stores T = N - 1 transitions: observations o_0..o_{N-2}, next observations o_1..o_{N-1}, actions
a_0..a_{N-2}. The last step's action is dropped in both cases, since no observation follows it.

Cameras. The schema (and the trainer's reader, schema.parse_example) has one image key, observations/images0,
so exactly one camera is converted: `image_<k>` for `cameras=(k,)`. Episodes whose chosen camera is blank in
every frame (the release's placeholder for a camera the episode does not have) are skipped and reported.

Output: `<output>/<dataset name>/{train,val}/out.tfrecord` when each split has one shard, else one output per input
shard, `<output>/<dataset name>/part<i>/{train,val}/out.tfrecord` (shard i of each split; resumable shard by
shard, atomic). Both are the layout the trainer and the original reader glob: `<dir>/{train,val}/out.tfrecord`.
The TFDS split "val" (else "validation", else "test") becomes val.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bdv2.data_tools import layout, schema
from bdv2.data_tools.convert import ProgressSink, Report, Skipped
from bdv2.data_tools.errors import DataToolsError, InputLayoutError

if TYPE_CHECKING:
    import tensorflow as tf

ACTION = "steps/action"
STATE = "steps/observation/state"
LANGUAGE = "steps/language_instruction"
ACTION_DIM = 7
"""Action and state width the schema and the trainer's relabelling expect (xyz, roll-pitch-yaw, gripper)."""
VAL_SPLITS = ("val", "validation", "test")
"""TFDS split names that become bdv2's val split, in order of preference."""


class RldsFormatError(DataToolsError, ValueError):
    """A feature is missing or shaped differently than bdv2 needs or features.json declares; a shard is cut."""


class CameraSpecError(DataToolsError, ValueError):
    """A --cameras value that is not one camera index."""


def image_key(camera: int) -> str:
    return f"steps/observation/image_{camera}"


def parse_cameras(text: str | None) -> tuple[int, ...]:
    """'0' -> (0,). More than one camera is refused: the schema has a single image key."""
    if text is None:
        return (0,)
    if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", text):
        raise CameraSpecError(f"--cameras {text!r}: expected camera indices such as 0 or 0,1")
    cams = tuple(int(c) for c in text.split(","))
    if len(cams) != 1:
        raise CameraSpecError(
            f"--cameras {text!r}: the bdv2 TFRecord schema (and the trainer) holds one camera, "
            "observations/images0; pass a single index, e.g. --cameras 0 (convert twice for two views)"
        )
    return cams


# ------------------------------------------------------------------------------------------ the directory

@dataclass(frozen=True)
class Declared:
    """One leaf of features.json."""

    kind: str
    """'tensor' (Tensor, Scalar), 'image' or 'text'."""
    dtype: str
    shape: tuple[int | None, ...]
    encoding: str
    per_step: bool
    """Inside `steps` (values of all steps back to back) or episode-level."""


@dataclass(frozen=True)
class RldsDir:
    path: Path
    name: str
    features: dict[str, Declared]
    shards: dict[str, list[Path]]
    """bdv2 split ('train', 'val') -> shard files, in order."""
    lengths: dict[str, list[int]]
    """bdv2 split -> episodes per shard, from dataset_info.json."""
    notes: list[str] = field(default_factory=list)

    @property
    def features_file(self) -> Path:
        return self.path / "features.json"


def is_rlds_dir(path: Path) -> bool:
    return (path / "dataset_info.json").is_file() and (path / "features.json").is_file()


def dataset_dirs(path: Path) -> list[Path]:
    """TFDS dataset directories at `path` or one or two levels down (`bridge_dataset/` -> `bridge_dataset/1.0.0/`)."""
    if is_rlds_dir(path):
        return [path]
    infos = [*path.glob("*/dataset_info.json"), *path.glob("*/*/dataset_info.json")]
    found = sorted({p.parent for p in infos})
    return [p for p in found if is_rlds_dir(p)]


def find_dataset_dir(path: Path) -> Path:
    """The one TFDS dataset directory that `path` is or holds."""
    found = dataset_dirs(path)
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputLayoutError(f"{path}: not a TFDS/RLDS dataset directory (no dataset_info.json + features.json "
                               "here or one or two levels down)")
    raise InputLayoutError(f"{path}: several TFDS datasets below it ({', '.join(map(str, found))}); pass one")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputLayoutError(f"{path}: unreadable ({e})") from None


def flatten_features(tree: dict[str, Any], prefix: str = "", per_step: bool = False) -> dict[str, Declared]:
    """features.json -> {'steps/observation/image_0': Declared, ...}, the keys TFDS writes into each Example."""
    if "featuresDict" in tree:
        out: dict[str, Declared] = {}
        for name, sub in tree["featuresDict"]["features"].items():
            out.update(flatten_features(sub, f"{prefix}{name}/", per_step))
        return out
    if "sequence" in tree:  # a nested Dataset (RLDS `steps`): its leaves hold one value block per step
        return flatten_features(tree["sequence"]["feature"], prefix, True)
    key = prefix.rstrip("/")
    if "image" in tree:
        spec = tree["image"]
        return {key: Declared("image", spec.get("dtype", "uint8"), _dims(spec), spec.get("encodingFormat", "png"),
                              per_step)}
    if "text" in tree:
        return {key: Declared("text", "string", (), "none", per_step)}
    if "tensor" in tree:
        spec = tree["tensor"]
        return {key: Declared("tensor", spec.get("dtype", "float32"), _dims(spec), spec.get("encoding", "none"),
                              per_step)}
    return {}  # feature kinds bdv2 never reads (e.g. ClassLabel) are left out


def _dims(spec: dict[str, Any]) -> tuple[int | None, ...]:
    dims = spec.get("shape", {}).get("dimensions", [])
    return tuple(None if int(d) < 0 else int(d) for d in dims)


def _shard_files(path: Path, name: str, split: dict[str, Any]) -> list[Path]:
    n = len(split.get("shardLengths", [])) or 1
    template = split.get("filepathTemplate", "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}")
    return [path / template.replace("{DATASET}", name).replace("{SPLIT}", split["name"])
            .replace("{FILEFORMAT}", "tfrecord").replace("{SHARD_X_OF_Y}", f"{i:05d}-of-{n:05d}")
            for i in range(n)]


def open_dir(path: Path) -> RldsDir:
    """Read dataset_info.json and features.json; check that every listed shard exists.

    Raises:
        InputLayoutError: not a TFDS directory, a shard missing, no train split.
    """
    path = find_dataset_dir(path)
    info = _load_json(path / "dataset_info.json")
    features = flatten_features(_load_json(path / "features.json"))
    name = info.get("name") or path.parent.name
    by_name = {s["name"]: s for s in info.get("splits", [])}
    notes = []
    chosen = {"train": "train"} if "train" in by_name else {}
    val = next((s for s in VAL_SPLITS if s in by_name), None)
    if val is not None:
        chosen["val"] = val
    if not chosen:
        raise InputLayoutError(f"{path / 'dataset_info.json'}: no train or val split (splits: {sorted(by_name)})")
    for other in sorted(set(by_name) - set(chosen.values())):
        notes.append(f"TFDS split {other!r} not converted (bdv2 keeps train and one of {'/'.join(VAL_SPLITS)})")
    if "val" not in chosen:
        notes.append(f"{path}: no {'/'.join(VAL_SPLITS)} split: only train is written")
    shards, lengths = {}, {}
    for split, tfds_name in chosen.items():
        files = _shard_files(path, name, by_name[tfds_name])
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise InputLayoutError(f"{missing[0]}: shard listed in dataset_info.json is missing "
                                   f"({len(missing)} of {len(files)} shards of split {tfds_name!r} absent)")
        shards[split] = files
        lengths[split] = [int(n) for n in by_name[tfds_name].get("shardLengths", [])] or [0] * len(files)
    return RldsDir(path, name, features, shards, lengths, notes)


def check_features(rlds: RldsDir, camera: int) -> None:
    """The features bdv2 reads must be declared, per step, with the type and shape it needs.

    Raises:
        RldsFormatError: naming the feature and features.json.
    """
    wanted = {
        image_key(camera): ("image", None),
        STATE: ("tensor", (ACTION_DIM,)),
        ACTION: ("tensor", (ACTION_DIM,)),
        LANGUAGE: ("text", ()),
    }
    for key, (kind, shape) in wanted.items():
        where = f"{rlds.features_file}: feature {key!r}"
        d = rlds.features.get(key)
        if d is None:
            cams = sorted(k.rsplit("_", 1)[-1] for k in rlds.features if k.startswith("steps/observation/image_"))
            hint = f" (cameras declared: {', '.join(cams)})" if key.startswith("steps/observation/image") else ""
            raise RldsFormatError(f"{where} is missing{hint}")
        if not d.per_step or d.kind != kind:
            raise RldsFormatError(f"{where} is a {'per-step' if d.per_step else 'per-episode'} {d.kind}; bdv2 "
                                  f"needs a per-step {kind}")
        if kind == "tensor" and (d.dtype != "float32" or d.shape != shape):
            raise RldsFormatError(f"{where} is {d.dtype} {list(d.shape)}; bdv2 needs float32 {list(shape or ())}")
        if kind == "image" and (len(d.shape) != 3 or d.shape[2] != 3 or d.encoding not in ("jpeg", "png")):
            raise RldsFormatError(f"{where} is {d.encoding} {list(d.shape)}; bdv2 needs RGB [H, W, 3] JPEG or PNG")


# ------------------------------------------------------------------------------------------ parsing (tf)

def _parse_fn(rlds: RldsDir, camera: int, decode: bool, im_size: int | None) -> Callable[[tf.Tensor], Any]:
    """The tf.data map: one serialized episode -> its per-step values, flat as stored (checked in Python).

    decode=False returns the first encoded frame instead of decoded frames (for inspect/stats).
    """
    import tensorflow as tf

    img = image_key(camera)
    spec = {  # allow_missing: a missing key parses as empty and is reported by _check with the file and record
        img: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
        STATE: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
        ACTION: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True),
        LANGUAGE: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
    }
    jpeg = rlds.features[img].encoding == "jpeg"

    def decode_one(data: tf.Tensor) -> tf.Tensor:
        # INTEGER_ACCURATE: the same IDCT as PIL's default, so frames do not depend on the decoder's speed setting
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE") if jpeg else \
            tf.io.decode_png(data, channels=3)

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        p = tf.io.parse_single_example(serialized, spec)
        out = {"state": p[STATE], "action": p[ACTION], "language": p[LANGUAGE], "n_images": tf.size(p[img])}
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


def _check(ep: RawEpisode, rlds: RldsDir, camera: int, shard: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
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
        raise RldsFormatError(f"{shard}: truncated or corrupt TFRecord after {index} records "
                              f"({e.message.splitlines()[0]}); download this shard again") from None
    except tf.errors.InvalidArgumentError as e:
        # parse_single_example names the key in its message ("Key: steps/action. Data types don't match")
        raise RldsFormatError(f"{shard}[{index}]: cannot parse the episode: {e.message.splitlines()[0]}") from None


# ------------------------------------------------------------------------------------------ conversion

def output_file(output_path: Path, rlds: RldsDir, split: str, shard_index: int) -> Path:
    """`<name>/<split>/out.tfrecord`, or `<name>/part<i>/<split>/out.tfrecord` when any split has several shards:
    the trainer (like the original) reads `<dir>/train/out.tfrecord` with its val sibling, at any depth."""
    if all(len(files) == 1 for files in rlds.shards.values()):
        return output_path / rlds.name / split / "out.tfrecord"
    return output_path / rlds.name / f"part{shard_index:05d}" / split / "out.tfrecord"


def episode_arrays(ep: RawEpisode, rlds: RldsDir, camera: int, shard: Path, index: int
                   ) -> dict[str, np.ndarray] | Skipped:
    """A decoded episode -> the schema's feature arrays (T = N - 1 transitions), or why it is skipped."""
    state, action = _check(ep, rlds, camera, shard, index)
    n = len(state)
    if n < 2:
        return Skipped(ep.where, f"{n} step(s): an episode needs two observations to make one transition")
    if bool(ep.values["blank"]):
        return Skipped(ep.where, f"camera image_{camera} is blank in every frame (the release's placeholder "
                                 "for a camera this episode does not have)")
    # Step t pairs o_t with a_t; the last step's action (zero in the full release) has no next observation.
    return schema.make_arrays(ep.values["images"], state, action[:-1], instructions(ep.values["language"]))


def _convert_shard(rlds: RldsDir, split: str, shard_index: int, final: Path, camera: int, im_size: int | None,
                   num_workers: int, report: Report, progress: ProgressSink) -> None:
    import tensorflow as tf

    shard = rlds.shards[split][shard_index]
    count = 0
    with layout.atomic_output(final) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
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
                     progress: ProgressSink | None = None) -> Report:
    """RLDS/TFDS dataset dir -> `<output>/<name>/{train,val}/out*.tfrecord` in bdv2's schema, one Example per
    episode. Streams shard by shard; each output is written under a temporary name and renamed when complete;
    finished outputs are kept (resume) unless `overwrite`. `num_workers` threads parse and decode. `im_size`
    squashes frames to im_size x im_size (antialiased Lanczos-3); None keeps the release's size.

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
    todo = []
    for split, files in rlds.shards.items():
        for i in range(len(files)):
            final = output_file(output_path, rlds, split, i)
            if final.exists() and not overwrite:
                report.existing.append(final)
            else:
                todo.append((split, i, final))
    progress.start(sum(rlds.lengths[split][i] for split, i, _ in todo))
    for split, i, final in todo:
        _convert_shard(rlds, split, i, final, camera, im_size, num_workers, report, progress)
    report.seconds = time.perf_counter() - started
    return report


# ------------------------------------------------------------------------------------------ light reading

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


def iter_facts(path: Path, camera: int = 0, problems: list[str] | None = None) -> Iterator[EpisodeFacts]:
    """Every episode of the train and val splits, light (one JPEG header per episode).

    Raises:
        InputLayoutError, RldsFormatError: as `rlds_to_tfrecord`.
    """
    from PIL import Image

    rlds = open_dir(path)
    check_features(rlds, camera)
    if problems is not None:
        problems.extend(rlds.notes)
    for split, files in rlds.shards.items():
        for shard in files:
            for index, ep in enumerate(iter_shard(rlds, shard, camera, decode=False)):
                state, action = _check(ep, rlds, camera, shard, index)
                shape: tuple[int, ...] = ()
                if len(ep.values["first_image"]):
                    with Image.open(io.BytesIO(ep.values["first_image"][0])) as im:  # header only
                        shape = (im.height, im.width, len(im.getbands()))
                yield EpisodeFacts(rlds.name, split, ep.where, shape, instructions(ep.values["language"]), state,
                                   action[:-1])


# ------------------------------------------------------------------------------------------ trainer adapter

def episode_dataset(path: Path, split: str, camera: int = 0, im_size: int | None = None,
                    num_parallel_calls: int | None = None) -> tf.data.Dataset:
    """An RLDS split read straight into schema.parse_example's form (same keys, dtypes and alignment as a
    converted file), so a training task can point at the release without copying it.

    Unlike the converter, format problems surface as TensorFlow errors, and skipped episodes (fewer than two
    steps, blank camera) are filtered silently: run `bdv2 data inspect` on the directory first.
    """
    import tensorflow as tf

    rlds = open_dir(path)
    check_features(rlds, camera)
    if split not in rlds.shards:
        raise InputLayoutError(f"{rlds.path}: no {split!r} split (have {sorted(rlds.shards)})")
    calls = num_parallel_calls or tf.data.AUTOTUNE
    parse = _parse_fn(rlds, camera, True, im_size)

    def to_schema(v: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        state = tf.reshape(v["state"], [-1, ACTION_DIM])
        action = tf.reshape(v["action"], [-1, ACTION_DIM])[:-1]
        t = tf.shape(action)[0]
        lang = tf.unique(tf.strings.strip(v["language"])).y
        lang = tf.boolean_mask(lang, tf.strings.length(lang) > 0)
        lang = tf.cond(tf.size(lang) > 0, lambda: lang, lambda: tf.constant([""]))
        return {
            "observations/images0": v["images"][:-1],
            "observations/state": state[:-1],
            "next_observations/images0": v["images"][1:],
            "next_observations/state": state[1:],
            "language": lang,
            "actions": action,
            "terminals": tf.zeros([t], tf.bool),
            "truncates": tf.equal(tf.range(t), t - 1),
        }

    ds = tf.data.TFRecordDataset([str(f) for f in rlds.shards[split]])
    ds = ds.map(parse, num_parallel_calls=calls, deterministic=True)
    ds = ds.filter(lambda v: tf.logical_and(v["n_images"] >= 2, tf.logical_not(v["blank"])))
    return ds.map(to_schema, num_parallel_calls=calls, deterministic=True)
