"""Speed of `bdv2 doctor --log` reading on logs of several shapes, 1 MB each (and one 20 MB log).

Prints seconds per shape for diagnose_log (normalising, signatures, families, tracebacks, resolvers, loader
traces), and the ratio of the slowest 1 MB shape to the time of reading the same megabyte of ordinary log
lines (the baseline, measured in the same run). Goal: every 1 MB shape well under 1 s.

Usage: python bench/log_speed.py [--mb 1] [--big-mb 20]
"""

from __future__ import annotations

import argparse
import base64
import random
import time

from bdv2.doctor import load_matrix
from bdv2.doctor.logs import diagnose_log

TB = ('Traceback (most recent call last):\n  File "/home/u/experiments/train.py", line 174, in main\n'
      "    metrics = jax.tree_map(lambda *xs: np.mean(xs), *metrics)\n"
      "AttributeError: module 'jax' has no attribute 'tree_map'\n")

# TensorFlow's loader probing for a CUDA library, line after line (what a TF 2.x start-up prints on a machine
# without its CUDA): every soname reader and the restatement of TensorFlow's loader lines look at each
LOADER = ("2024-03-01 12:00:00.100000: W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not "
          "load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file: "
          "No such file or directory\n")


def shapes(size: int) -> dict[str, str]:
    rng = random.Random(0)
    ordinary = "".join(f"2024-03-01 12:00:{i % 60:02d}.100000: I tensorflow/core/util/port.cc:113] step {i}: loss "
                       f"{rng.random():.4f}\n" for i in range(size // 60))
    return {
        "ordinary lines": ordinary[:size],
        "one line, no spaces": "a" * size,
        "long lines, no spaces": ("a" * 3000 + "\n") * (size // 3001),
        "long lines of digits/dots": ("1.2" * 1000 + "\n") * (size // 3001),
        "base64 blob": base64.b64encode(rng.randbytes(size * 3 // 4)).decode(),
        "minified JSON": ('{"k":[' + ",".join(f'{{"a{i}":"v{i}"}}' for i in range(size // 12)) + "]}")[:size],
        "progress bar (CR)": "".join(f"\r{i % 100}%|{'#' * (i % 50)}" for i in range(size // 40))[:size],
        "random bytes": rng.randbytes(size).decode("latin-1"),
        "pip resolver words": ("x" * 200 + " has no wheels with a matching platform tag " + "y" * 200 + "\n")
        * (size // 450),
        "tracebacks": (TB * (size // len(TB)))[:size],
        "loader failures": (LOADER * (size // len(LOADER)))[:size],
        "long paths": (("Permission denied: '" + "a/" * 300 + "'\n") * (size // 622))[:size],
    }


def timed(text: str, matrix: object) -> float:
    t0 = time.perf_counter()
    diagnose_log(text, matrix)  # type: ignore[arg-type]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--big-mb", type=float, default=20.0)
    args = ap.parse_args()
    matrix = load_matrix()
    size = int(args.mb * 1_000_000)
    t0 = time.perf_counter()
    diagnose_log(TB, matrix)  # once per process: the families' data and the API history are read and cached
    print(f"{'first call (loads data)':24s}          {time.perf_counter() - t0:6.3f} s")
    times = {}
    for name, text in shapes(size).items():
        times[name] = timed(text, matrix)
        print(f"{name:24s} {len(text) / 1e6:5.2f} MB  {times[name]:6.3f} s")
    base = times["ordinary lines"]
    worst = max(times, key=lambda k: times[k])
    print(f"slowest shape: {worst} ({times[worst]:.3f} s), {times[worst] / base:.1f}x ordinary lines (goal < 1 s)")
    if args.big_mb:
        big = shapes(int(args.big_mb * 1_000_000))["ordinary lines"] + TB
        print(f"{'ordinary lines':24s} {len(big) / 1e6:5.2f} MB  {timed(big, matrix):6.3f} s")


if __name__ == "__main__":
    main()
