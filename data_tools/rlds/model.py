"""The RLDS/TFDS dataset directory as bdv2 sees it: dataset_info.json (name, splits, shard lengths, file
template), features.json (the feature tree, flattened to the keys TFDS writes into each Example) and the shard
files, checked before anything is read. No TensorFlow here.

A TFDS dataset directory (e.g. `~/tensorflow_datasets/bridge_dataset/1.0.0/`)::

    dataset_info.json                       name, splits (name, shardLengths, filepathTemplate)
    features.json                           the feature tree: steps/{observation/{image_0..3, state}, action,
                                            language_instruction, is_first, ...}, episode_metadata/...
    bridge_dataset-train.tfrecord-00000-of-01024 ...   one tf.train.Example per episode

The TFDS split "val" (else "validation", else "test") becomes bdv2's val split.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataToolsError, InputLayoutError
from ..layout import check_not_empty

ACTION = "steps/action"
STATE = "steps/observation/state"
LANGUAGE = "steps/language_instruction"
ACTION_DIM = 7
"""Action and state width the schema and the trainer's relabelling expect (xyz, roll-pitch-yaw, gripper)."""
VAL_SPLITS = ("val", "validation", "test")
"""TFDS split names that become bdv2's val split, in order of preference."""


class RldsFormatError(DataToolsError, ValueError):
    """A feature is missing or shaped differently than bdv2 needs or features.json declares; a shard is cut."""


class RldsDamagedShardError(RldsFormatError):
    """A shard that cannot be read to its end (truncated or corrupt); the message is records.Damage's line."""


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
        check_not_empty(path)
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


def shard_names(name: str, split: dict[str, Any]) -> list[str]:
    """The file names of one split's shards, in order, from its dataset_info.json entry (TFDS's default
    template when it names none: bridge_dataset-train.tfrecord-00000-of-01024)."""
    n = len(split.get("shardLengths", [])) or 1
    template = split.get("filepathTemplate", "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}")
    return [template.replace("{DATASET}", name).replace("{SPLIT}", split["name"])
            .replace("{FILEFORMAT}", "tfrecord").replace("{SHARD_X_OF_Y}", f"{i:05d}-of-{n:05d}")
            for i in range(n)]


def open_dir(path: Path) -> RldsDir:
    """Read dataset_info.json and features.json and find the listed shards. A split of which only some shards
    are present (a partial download) is read from those, with a note saying how much of it is here.

    Raises:
        InputLayoutError: not a TFDS directory, every shard of a split missing, no train split.
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
        files = [path / f for f in shard_names(name, by_name[tfds_name])]
        counts = [int(n) for n in by_name[tfds_name].get("shardLengths", [])] or [0] * len(files)
        present = [i for i, f in enumerate(files) if f.is_file()]
        if not present:
            raise InputLayoutError(f"{files[0]}: shard listed in dataset_info.json is missing "
                                   f"({len(files)} of {len(files)} shards of split {tfds_name!r} absent)")
        if len(present) < len(files):  # a part of the release (bdv2 data fetch --shards/--smoke): read what is here
            notes.append(f"{path}: split {tfds_name!r}: {len(present)} of {len(files)} shards present, "
                         f"{sum(counts[i] for i in present)} of {sum(counts)} episodes (a partial download)")
        shards[split] = [files[i] for i in present]
        lengths[split] = [counts[i] for i in present]
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
