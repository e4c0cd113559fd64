"""Conversion throughput on this machine, one run: frames/s (transitions per second) for

1. decode + resize only: camera-0 JPEGs -> im_size LANCZOS, in the same worker pool, nothing written
   (the physical limit of any converter here), draft and exact decoding;
2. raw-to-numpy + numpy-to-tfrecord (the original two-step path; decodes every camera, exact);
3. raw-to-tfrecord, draft (the default) and --exact.

Usage: python bench/bench_convert.py [--trajectories 8] [--frames 30] [--im-size 128] [--workers N]
The data is `bdv2 data sample` (640x480 JPEGs, 3 cameras) written to a temporary directory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bdv2.data_tools import convert
from bdv2.data_tools.layout import find_raw_tasks, list_trajectories
from bdv2.data_tools.raw import ResizeMode, load_camera
from bdv2.data_tools.sample import write_sample


def _decode_one(job: tuple[Path, int, ResizeMode]) -> int:
    traj, im_size, mode = job
    cam = traj / "images0"
    n = sum(1 for _ in cam.glob("im_*.jpg"))
    load_camera(traj, cam, range(n), n, im_size, mode)
    return n - 1  # transitions this trajectory contributes (before any latency shift)


def decode_only(raw: Path, im_size: int, workers: int, mode: ResizeMode) -> tuple[int, float]:
    trajs = [t for task in find_raw_tasks(raw, 5) for d in sorted(task.iterdir()) for t in list_trajectories(d)]
    started = time.perf_counter()
    frames = sum(convert.parallel_map(_decode_one, [(t, im_size, mode) for t in trajs], workers))
    return frames, time.perf_counter() - started


def main() -> None:
    from bdv2.console import quiet_native_logs

    quiet_native_logs()  # TensorFlow's start-up lines stay out of the output, as in bdv2's commands
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trajectories", type=int, default=8, help="per dated dir (3 dated dirs)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--im-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=convert.default_workers())
    args = parser.parse_args()
    import tensorflow  # noqa: F401  - imported once up front so no timing below includes it

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        raw = write_sample(tmp / "raw", n_trajectories=args.trajectories, n_frames=args.frames)
        common = {"im_size": args.im_size, "num_workers": args.workers}
        rows = []
        for mode in (ResizeMode.DRAFT, ResizeMode.EXACT):
            frames, secs = decode_only(raw, args.im_size, args.workers, mode)
            rows.append((f"decode+resize only ({mode.value})", frames, secs))
        r1 = convert.raw_to_numpy(raw, tmp / "np", **common)
        r2 = convert.numpy_to_tfrecord(tmp / "np", tmp / "tf_np", **common)
        rows.append(("raw-to-numpy + numpy-to-tfrecord", r2.frames, r1.seconds + r2.seconds))
        for mode in (ResizeMode.DRAFT, ResizeMode.EXACT):
            r = convert.raw_to_tfrecord(raw, tmp / f"tf_{mode.value}", mode=mode, **common)
            rows.append((f"raw-to-tfrecord ({mode.value})", r.frames, r.seconds))
    print(f"{args.trajectories * 3} trajectories x {args.frames} frames, 640x480 -> {args.im_size}, "
          f"{args.workers} workers")
    limit = {m: rows[i][1] / rows[i][2] for i, m in enumerate(("draft", "exact"))}
    for name, frames, secs in rows:
        fps = frames / secs
        mode = "exact" if "exact" in name or "numpy" in name else "draft"
        print(f"  {name:<36} {frames:6d} frames {secs:7.2f} s {fps:9.1f} frames/s "
              f"{fps / limit[mode]:5.2f}x the {mode} decode limit")


if __name__ == "__main__":
    main()
