"""Speed of `bdv2 doctor` against the imports it saves, all measured in one run on one venv.

Prints the ratios (the goals are <= 0.3 and <= 1.3):
  plain `bdv2 doctor` (and `--json`) wall time / `python -c "import jax"` wall time (median of --repeat runs
  each, and the same ratio in CPU seconds, steadier on a busy machine), and how many of the doctor's modules
  the plain run imports
  `--deep` wall time / its slowest probe (in the same run), and / that probe run alone, with the floor
  that the machine's core count puts under the latter

Usage: python bench/doctor_speed.py [--python VENV_PYTHON] [--repeat 5] [--static-only] [--as-is]
The venv must have bdv2 and the [train] stack installed (the README's first command makes one).

Each command runs once before it is timed, as a user's first run would: Python writes the bytecode of what it
imports (pip compiled jax's at install; an editable bdv2's is written by its first run), and the doctor fills
its cache (~/.cache/bdv2/doctor). With PYTHONDONTWRITEBYTECODE set, that warm-up still writes bytecode unless
--as-is keeps the environment as it is (then every run compiles bdv2's sources, but not jax's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

WARM_ENV: dict[str, str] | None = None
"""The environment of each command's first, untimed run (None: this one's)."""


def wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False, env=env)
    return time.perf_counter() - t0


def median_wall(cmd: list[str], repeat: int) -> float:
    wall(cmd, WARM_ENV)  # warm the page cache, the bytecode and the doctor's cache once, as a user's first run does
    return statistics.median(wall(cmd) for _ in range(repeat))


def median_cpu(cmd: list[str], repeat: int) -> float:
    """User + system CPU seconds of the command and its children: steadier than wall time on a busy machine."""
    def cpu() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, capture_output=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return statistics.median(cpu() for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable, help="interpreter of the venv to measure")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--static-only", action="store_true", help="skip the --deep measurements (minutes)")
    ap.add_argument("--as-is", action="store_true",
                    help="warm up in this environment as it is (with PYTHONDONTWRITEBYTECODE: no bytecode written)")
    args = ap.parse_args()
    py = args.python
    global WARM_ENV
    if not args.as_is and "PYTHONDONTWRITEBYTECODE" in os.environ:
        WARM_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    print("bytecode: " + ("as the environment has it" if args.as_is or WARM_ENV is None else
                          "written by each command's warm-up run (PYTHONDONTWRITEBYTECODE left out of it)"))

    import_jax = median_wall([py, "-c", "import jax"], args.repeat)
    plain = median_wall([py, "-m", "bdv2.cli", "doctor"], args.repeat)
    doctor = median_wall([py, "-m", "bdv2.cli", "doctor", "--json"], args.repeat)
    print(f"python -c 'import jax'      {import_jax:6.2f} s (median of {args.repeat})")
    print(f"bdv2 doctor                 {plain:6.2f} s (median of {args.repeat})")
    print(f"bdv2 doctor --json          {doctor:6.2f} s (median of {args.repeat})")
    print(f"ratio doctor / import jax   {plain / import_jax:6.2f}   (goal <= 0.3; --json: {doctor / import_jax:.2f})")
    cpu_jax = median_cpu([py, "-c", "import jax"], args.repeat)
    cpu_doctor = median_cpu([py, "-m", "bdv2.cli", "doctor"], args.repeat)
    print(f"CPU time, same ratio        {cpu_doctor / cpu_jax:6.2f}   ({cpu_doctor:.2f} s / {cpu_jax:.2f} s user+sys)")
    code = ("import sys; sys.argv = ['bdv2', 'doctor']; from bdv2.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('bdv2.doctor')), file=sys.stderr)")
    res = subprocess.run([py, "-c", code], capture_output=True, text=True, check=False)
    loaded = json.loads(res.stderr.strip().splitlines()[-1].replace("'", '"'))
    print(f"doctor modules imported     {len(loaded):6d}   by a plain `bdv2 doctor`")
    if args.static_only:
        return

    # Each probe alone, then --deep (all probes in parallel), in the same venv.
    code = ("import json, sys; from bdv2.doctor.probe.collect import collect; "
            "from bdv2.doctor.probe.deep import PROBES, _skip_reason, run_probe; s = collect(); "
            "print(json.dumps({p.name: run_probe(sys.executable, p, 300).seconds "
            "for p in PROBES if not _skip_reason(p, s)}))")
    alone = json.loads(subprocess.run([py, "-c", code], capture_output=True, text=True, check=True).stdout)
    slowest_name = max(alone, key=alone.get)
    t0 = time.perf_counter()
    out = subprocess.run([py, "-m", "bdv2.cli", "doctor", "--deep", "--json"], capture_output=True, text=True)
    deep = time.perf_counter() - t0
    inside = {p["name"]: p["seconds"] for p in json.loads(out.stdout)["probes"] if p["status"] != "skipped"}
    for name, sec in alone.items():
        print(f"probe {name:18} alone {sec:6.2f} s   inside --deep {inside.get(name, float('nan')):6.2f} s")
    cores = os.cpu_count() or 1
    print(f"bdv2 doctor --deep          {deep:6.2f} s with {len(alone)} probes on {cores} cores")
    print(f"ratio deep / slowest probe  {deep / max(inside.values()):6.2f}   (goal <= 1.3: the slowest probe of the "
          "same run; what parallel running adds on top of it)")
    floor = sum(alone.values()) / cores / alone[slowest_name]
    print(f"ratio deep / slowest alone  {deep / alone[slowest_name]:6.2f}   (against {slowest_name} run alone; on few "
          f"cores bounded below by the probes' total time / cores = {floor:.2f})")


if __name__ == "__main__":
    main()
