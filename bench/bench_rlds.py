"""RLDS -> bdv2 TFRecord conversion speed on this machine, one run: episodes/s and frames/s for

1. the real debug sample as published (50 episodes x 10 steps, 64x64 JPEGs), native size; where it is absent,
   a generated one of the same size (bdv2.data_tools.rlds.sample);
2. a release-like copy of it (every frame re-encoded as a 256x256 JPEG, as in the full release, and each episode
   tiled 4x to 40 steps), converted at the release's 256 px and squashed to 128 px (--im_size 128).

frames/s counts decoded source steps (observations); transitions written are one fewer per episode.
Usage: python bench/bench_rlds.py [--sample DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

from bdv2.data_tools import convert, rlds
from bdv2.data_tools.rlds.sample import write_rlds_sample

DEFAULT_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bridge_rlds_debug"
TILE, SIZE = 4, 256


def release_like(sample: Path, out: Path) -> Path:
    """Copy of the sample with 256x256 JPEG frames and episodes tiled TILE times (per-step features repeated)."""
    import tensorflow as tf

    out.mkdir(parents=True)
    shutil.copy(sample / "dataset_info.json", out)
    features = (sample / "features.json").read_text().replace('"64"', f'"{SIZE}"')
    (out / "features.json").write_text(features)
    for shard in sample.glob("*.tfrecord-*"):
        with tf.io.TFRecordWriter(str(out / shard.name)) as writer:
            for raw in tf.data.TFRecordDataset(str(shard)):
                example = tf.train.Example.FromString(raw.numpy())
                for key, feature in example.features.feature.items():
                    if not key.startswith("steps/"):
                        continue
                    values = getattr(feature, feature.WhichOneof("kind")).value
                    items = list(values)
                    if key.startswith("steps/observation/image_"):
                        items = [_upscale(b) for b in items]
                    del values[:]
                    values.extend(items * TILE)
                writer.write(example.SerializeToString())
    return out


def _upscale(data: bytes) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).resize((SIZE, SIZE), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def main() -> None:
    from bdv2.console import quiet_native_logs

    quiet_native_logs()  # TensorFlow's start-up lines stay out of the output, as in bdv2's commands
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--workers", type=int, default=convert.default_workers())
    args = parser.parse_args()
    import tensorflow  # noqa: F401  - imported once up front so no timing below includes it

    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not (args.sample / "features.json").is_file():
            print(f"{args.sample}: no RLDS sample there; using a generated one of the same size")
            args.sample = write_rlds_sample(tmp / "generated", episodes={"train": 25, "val": 25}, steps=10,
                                            shards_per_split=1)
        big = release_like(args.sample, tmp / "release_like")
        # A throw-away run first: tf.data graph tracing is paid once per process, not per dataset.
        rlds.rlds_to_tfrecord(args.sample, tmp / "warm", num_workers=args.workers)
        for name, src, im_size in (("debug sample, 64 px native", args.sample, None),
                                   (f"release-like {SIZE} px, native", big, None),
                                   (f"release-like {SIZE} px -> 128", big, 128)):
            report = rlds.rlds_to_tfrecord(src, tmp / name.replace(" ", "_"), im_size=im_size,
                                           num_workers=args.workers)
            steps = report.frames + report.trajectories  # N - 1 transitions per episode -> N decoded frames
            rows.append((name, report.trajectories, steps, report.seconds))
        facts_secs = _time_inspect(big)
    print(f"{args.workers} workers (tf.data parse/decode threads)")
    for name, episodes, steps, secs in rows:
        print(f"  {name:<34} {episodes:4d} episodes {steps:6d} frames {secs:6.2f} s "
              f"{episodes / secs:8.1f} episodes/s {steps / secs:9.1f} frames/s")
    print(f"  inspect (light read, no decode) of the release-like copy: {facts_secs:.2f} s")
    print(json.dumps({name: {"episodes_per_s": round(e / s, 1), "frames_per_s": round(f / s, 1)}
                      for name, e, f, s in rows}))


def _time_inspect(path: Path) -> float:
    started = time.perf_counter()
    for _ in rlds.iter_facts(path):
        pass
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
