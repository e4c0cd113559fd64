"""How often `bdv2 doctor --log` names the right cause on a batch of real error logs it was not built from.

Each `*.log` in the batch folder starts with three header lines:

    # source: <public thread URL>
    # cause: <the cause as the thread established it>
    # accept: <finding id> [<finding id> ...]   (or `none`)

The header is stripped, the rest is written to a temporary file and handed to the doctor exactly as a new user
would run it: `bdv2 doctor --log FILE --json`, the `bdv2` next to this Python, in an empty working directory.
A log counts as right when one of its accepted ids is among the first two findings that are not severity info;
for `none`, when the first finding is `log-no-known-cause` or there is no finding above info.

Usage: python bench/log_fresh_score.py [BATCH_DIR] [--timeout 60]
BATCH_DIR defaults to the newest dated folder under tests/data/log_fresh/. Prints one line per log (slug,
expected ids, the first two non-info finding ids, seconds) and then
`fresh batch <folder>: H/N right in the first two findings (P%)`, followed by every log whose reading took over
1 s or that crashed the doctor. Reading time is the run's wall time less the start-up time, measured in the same
run as the median of three doctor runs on a one-line log (on a busy machine start-up alone can exceed 1 s).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRESH = ROOT / "tests" / "data" / "log_fresh"
HEADER = re.compile(r"^# (source|cause|accept):\s?(.*)$")
NO_CAUSE = "log-no-known-cause"
SLOW_S = 1.0


@dataclass
class Case:
    path: Path
    source: str = ""
    cause: str = ""
    accept: list[str] = field(default_factory=list)
    body: str = ""

    @property
    def slug(self) -> str:
        return self.path.stem


@dataclass
class Result:
    case: Case
    top: list[str]
    seconds: float
    hit: bool
    crash: str = ""


def newest_batch() -> Path:
    dated = sorted(p for p in FRESH.iterdir() if p.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.name))
    if dated:
        return dated[-1]
    dirs = [p for p in FRESH.iterdir() if p.is_dir()]
    if not dirs:
        raise SystemExit(f"no batch folder under {FRESH}")
    return max(dirs, key=lambda p: p.stat().st_mtime)


def read_case(path: Path) -> Case:
    case = Case(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    i = 0
    while i < len(lines) and (m := HEADER.match(lines[i].rstrip("\r\n"))):
        key, value = m[1], m[2].strip()
        if key == "source":
            case.source = value
        elif key == "cause":
            case.cause = value
        else:
            case.accept = value.split()
        i += 1
    case.body = "".join(lines[i:])
    if not case.accept:
        raise SystemExit(f"{path}: no '# accept:' header line")
    return case


def bdv2_command() -> list[str]:
    exe = Path(sys.executable).with_name("bdv2")
    if not exe.exists():
        raise SystemExit(f"{exe} not found: run this with the Python of the environment bdv2 is installed in")
    return [str(exe)]


def non_info_ids(report: dict) -> list[str]:
    return [f["id"] for f in report.get("findings", []) if f.get("severity") != "info"]


def judge(case: Case, top: list[str]) -> bool:
    if case.accept == ["none"]:
        return not top or top[0] == NO_CAUSE
    return any(i in case.accept for i in top[:2])


def run_one(case: Case, cmd: list[str], workdir: Path, timeout: float) -> Result:
    log = workdir / f"{case.slug}.log"
    log.write_text(case.body, encoding="utf-8")
    started = time.perf_counter()
    try:
        proc = subprocess.run([*cmd, "doctor", "--log", str(log), "--json"], cwd=workdir, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Result(case, [], time.perf_counter() - started, False, f"timed out after {timeout:.0f} s")
    seconds = time.perf_counter() - started
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return Result(case, [], seconds, False, f"exit {proc.returncode}, no JSON report: {tail[0][:200]}")
    crash = ""
    if "Traceback (most recent call last)" in proc.stderr:
        crash = f"exit {proc.returncode}, traceback on stderr"
    top = non_info_ids(report)[:2]
    return Result(case, top, seconds, judge(case, top) and not crash, crash)


def startup_seconds(cmd: list[str], workdir: Path, timeout: float) -> float:
    """Median wall time of the doctor on a one-line log: process start-up and report, no reading to speak of."""
    probe = Case(workdir / "startup.log", accept=["none"], body="hello\n")
    return sorted(run_one(probe, cmd, workdir, timeout).seconds for _ in range(3))[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("batch", nargs="?", type=Path, help="batch folder (default: newest dated one under "
                    "tests/data/log_fresh/)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds one doctor run may take (default 60)")
    args = ap.parse_args()
    batch: Path = args.batch or newest_batch()
    cases = [read_case(p) for p in sorted(batch.glob("*.log"))]
    if not cases:
        raise SystemExit(f"no *.log in {batch}")
    cmd = bdv2_command()
    results: list[Result] = []
    width = max(len(c.slug) for c in cases)
    with tempfile.TemporaryDirectory(prefix="log_fresh_") as tmp:
        startup = startup_seconds(cmd, Path(tmp), args.timeout)
        print(f"doctor start-up on a one-line log: {startup:.2f} s (median of 3)")
        for case in cases:
            r = run_one(case, cmd, Path(tmp), args.timeout)
            results.append(r)
            mark = "ok  " if r.hit else "MISS"
            got = ", ".join(r.top) or "(no finding above info)"
            note = f"  [{r.crash}]" if r.crash else ""
            print(f"{mark} {case.slug:<{width}}  expected: {' | '.join(case.accept)}  got: {got}  "
                  f"{r.seconds:.2f} s ({r.seconds - startup:+.2f} s over start-up){note}", flush=True)
    hits = sum(r.hit for r in results)
    n = len(results)
    try:
        shown = batch.resolve().relative_to(ROOT)
    except ValueError:
        shown = batch
    print(f"fresh batch {shown}: {hits}/{n} right in the first two findings ({100 * hits / n:.0f}%)")
    times = sorted(r.seconds for r in results)
    print(f"time per log (wall, start-up included): median {times[n // 2]:.2f} s, max {times[-1]:.2f} s; "
          f"start-up {startup:.2f} s")
    slow = [r for r in results if r.seconds - startup > SLOW_S]
    crashed = [r for r in results if r.crash]
    print(f"reading over {SLOW_S:.0f} s: "
          + (", ".join(f"{r.case.slug} ({r.seconds - startup:.2f} s)" for r in slow) or "none"))
    print("crashed: " + (", ".join(f"{r.case.slug} ({r.crash})" for r in crashed) or "none"))


if __name__ == "__main__":
    main()
