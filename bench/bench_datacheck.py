"""How fast `bdv2 data identify`, `check` and `view` read on this machine, one run, in-process (TensorFlow's import
is paid once, before the clock): a generated release-shaped RLDS dataset (bdv2.data_tools.rlds.sample) of
EPISODES episodes x STEPS steps at SIZE px, four cameras as in the release.

Prints seconds and episodes/s for: identify (default sample), identify --all, check --quick (no frames), check
(frames decoded), view of 4 episodes; and, as the baseline in the same run, one plain tf.data pass that parses
and decodes camera 0 of every episode (what check's frame part cannot do faster).
Usage: python bench/bench_datacheck.py [--episodes N] [--steps N] [--size PX]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=120)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    import tensorflow as tf

    from bdv2.data_tools import rlds
    from bdv2.data_tools.check import Options, check_tree
    from bdv2.data_tools.identify import identify
    from bdv2.data_tools.rlds.sample import write_rlds_sample
    from bdv2.data_tools.view import pick, write_page

    with tempfile.TemporaryDirectory() as tmp:
        root = write_rlds_sample(Path(tmp), episodes={"train": args.episodes, "val": args.episodes // 4},
                                 steps=args.steps, image_size=args.size, shards_per_split=4)
        total = args.episodes + args.episodes // 4
        print(f"dataset: {total} episodes x {args.steps} steps, {args.size} px, 4 cameras")

        def timed(name: str, fn: object) -> None:
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            s = time.perf_counter() - t
            print(f"{name:28} {s:7.2f} s  {total / s:8.1f} episodes/s")

        def baseline() -> None:
            d = rlds.open_dir(root)
            for files in d.shards.values():
                for shard in files:
                    for _ in rlds.iter_shard(d, shard, 0, decode=True):
                        pass

        timed("tf.data parse+decode (base)", baseline)
        timed("identify", lambda: identify(root))
        timed("identify --all", lambda: identify(root, all_episodes=True))
        timed("check --quick", lambda: check_tree(root, Options(frames=False), quick=True))
        timed("check (frames)", lambda: check_tree(root))
        t = time.perf_counter()
        write_page(root, pick(root, None, 4), Path(tmp) / "page.html")
        print(f"{'view (4 episodes)':28} {time.perf_counter() - t:7.2f} s")
        del tf


if __name__ == "__main__":
    main()
