"""Helpers of the data_tools tests, imported as a module (``from . import helpers``); conftest.py holds only
fixtures.

The RLDS tests run on two sources: the release-shaped dataset that `bdv2.data_tools.rlds.sample` writes (always
available) and, as an extra layer, the real 50-episode BridgeData sample outside the repository (found through
BDV2_RLDS_SAMPLE only, tests/real_sample.py; skipped with the reason when it is absent)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import real_sample
from PIL import Image

REAL_RLDS_MISSING = real_sample.SKIP_REASON
GENERATED_EPISODES = {"train": 6, "val": 3}
GENERATED_STEPS = 8


def truncate_jpeg(path: Path) -> None:
    """Fault: trajectory ``path``'s images0/im_1.jpg cut to 500 bytes (cannot be decoded)."""
    f = path / "images0" / "im_1.jpg"
    f.write_bytes(f.read_bytes()[:500])


def drop_frame(path: Path) -> None:
    """Fault: one camera frame fewer than the states (a length mismatch)."""
    last = max(int(f.stem[3:]) for f in (path / "images0").glob("im_*.jpg"))
    (path / "images0" / f"im_{last}.jpg").rename(path / "images0" / "spare.jpg")


def missing_pickle(path: Path) -> None:
    """Fault: no obs_dict.pkl."""
    (path / "obs_dict.pkl").unlink()


def traj(raw: Path, task: str = "put_carrot_in_pot", index: int = 0) -> Path:
    """The directory of trajectory `index` of `task` in a `write_sample` raw tree."""
    return next(raw.rglob(f"{task}/00/*/raw/traj_group0/traj{index}"))


@dataclass(frozen=True)
class RldsSample:
    """An RLDS dataset directory under test and what it holds."""

    kind: str
    """'generated' (bdv2.data_tools.rlds.sample) or 'real' (the external BridgeData sample)."""
    path: Path
    episodes: dict[str, int]
    steps: int
    """Steps per episode (every episode has the same number)."""
    image_size: int = 64

    @property
    def total(self) -> int:
        return sum(self.episodes.values())

    def shards(self, split: str) -> list[Path]:
        return sorted(self.path.glob(f"bridge_dataset-{split}.tfrecord-*"))

    def shard(self, split: str) -> Path:
        """The split's only shard (the tests that edit records use single-shard datasets)."""
        files = self.shards(split)
        assert len(files) == 1, files
        return files[0]


def real_rlds() -> RldsSample | None:
    if not real_sample.present() or real_sample.PATH is None:
        return None
    return RldsSample("real", real_sample.PATH, {"train": 25, "val": 25}, 10)


def source_episodes(sample: RldsSample, split: str, root: Path | None = None) -> list[dict[str, Any]]:
    """The source episodes read independently of bdv2's RLDS reader: protobuf + PIL, no tf.io parsing."""
    import tensorflow as tf

    out = []
    shards = sample.shards(split) if root is None else [root / f.name for f in sample.shards(split)]
    for shard in shards:
        for raw in tf.data.TFRecordDataset(str(shard)):
            f = tf.train.Example.FromString(raw.numpy()).features.feature
            out.append({
                "frames": np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))
                                    for b in f["steps/observation/image_0"].bytes_list.value]),
                "state": np.array(f["steps/observation/state"].float_list.value, np.float32).reshape(-1, 7),
                "action": np.array(f["steps/action"].float_list.value, np.float32).reshape(-1, 7),
                "language": {b.decode() for b in f["steps/language_instruction"].bytes_list.value},
            })
    return out


def rewrite_records(shard: Path, records: list[bytes]) -> None:
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(shard)) as writer:
        for r in records:
            writer.write(r)


def read_records(shard: Path) -> list[bytes]:
    import tensorflow as tf

    return [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
