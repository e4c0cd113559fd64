"""The memory plan: its arithmetic and verdict on literal plans and machines, and `bdv2 train` as a user runs it
(--plan on a tiny config; a launch whose shuffle buffer cannot fit is refused with a size that fits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bdv2.trainer import budget

from . import helpers

MB = 10**6


def _plan(name: str = "r", shuffle_slots: int = 1000, slot_bytes: float = 0.5 * MB, **over: Any) -> budget.RunPlan:
    d: dict[str, Any] = {"name": name, "platform": "cuda", "devices": 1, "shuffle_slots": shuffle_slots,
                         "slot_bytes": slot_bytes, "shuffle_bytes": int(shuffle_slots * slot_bytes),
                         "prefetch_bytes": 10 * MB, "state_bytes": 40 * MB, "checkpoint_bytes": 40 * MB,
                         "keep_checkpoints": 3, "num_steps": 100, "interpreter_bytes": 1000 * MB}
    d.update(over)
    return budget.RunPlan(**d)


def test_host_bytes_add_up_and_disk_counts_the_checkpoint_being_written() -> None:
    p = _plan()
    assert p.host_bytes == 1000 * MB + 500 * MB + 10 * MB
    assert p.disk_bytes() == 4 * 40 * MB  # keep_checkpoints 3, and the one being written
    assert _plan(keep_checkpoints=None, num_steps=1000, save_interval=300).disk_bytes() == 5 * 40 * MB  # keep all
    assert _plan(keep_checkpoints=3, num_steps=100, save_interval=100).disk_bytes() == 2 * 40 * MB


def test_fits_says_so_in_one_line() -> None:
    v = budget.judge([_plan()], 1, budget.Machine(20_000 * MB, "MemAvailable"))
    assert v.fits and not v.problems
    assert v.line == ("plan: host RAM 1.5 GB per run (shuffle buffer 500.0 MB: 1000 slots x 500.0 kB); "
                      "20.0 GB available: fits (device memory: checked by bdv2 train --plan)")
    compiled = budget.judge([_plan(compiled=True)], 1, budget.Machine(20_000 * MB, "MemAvailable"))
    assert compiled.line.endswith("available: fits")


def test_a_buffer_too_large_gets_a_size_that_fits() -> None:
    # 25,000 slots x 0.52 MB (three 256 px images per slot) = 13 GB: the default, on a 12 GB machine.
    plans = [_plan(shuffle_slots=25_000, slot_bytes=0.52 * MB)]
    v = budget.judge(plans, 1, budget.Machine(12_000 * MB, "MemAvailable"), 25_000)
    assert not v.fits
    fix = next(f for f in v.fixes if "shuffle_buffer_size" in f)
    size = int(fix.split(": ")[1].split()[0])
    # the fix fits: interpreter + prefetch + size slots within the 90 % budget, and not far below it
    assert 1010 * MB + size * 0.52 * MB <= 0.9 * 12_000 * MB < 1010 * MB + (size + 200) * 0.52 * MB


def test_parallel_runs_add_up_and_fewer_at_once_is_offered() -> None:
    plans = [_plan(f"r{i}", shuffle_slots=4000) for i in range(4)]  # 3.0 GB each
    have = budget.Machine(8_000 * MB, "MemAvailable")
    assert budget.judge(plans, 1, have).fits
    v = budget.judge(plans, 4, have)
    assert not v.fits and "x 4 at once = 12.0 GB" in v.line
    assert any("run at most 2 at once" in f for f in v.fixes)


def test_device_memory_over_the_limit_is_refused() -> None:
    p = _plan(device_bytes=90_000 * MB, device_limit=80_000 * MB)
    v = budget.judge([p], 1, budget.Machine(100_000 * MB, "MemAvailable"))
    assert not v.fits and "device memory 90.0 GB needed, 80.0 GB on the device" in v.problems[0]
    assert "smaller train_batch_size" in v.fixes[0]


def test_machine_reads_meminfo_and_a_cgroup_limit(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   20000000 kB\n")
    cg = tmp_path / "cg"
    cg.mkdir()
    assert budget.machine(str(meminfo), cg) == budget.Machine(20_000_000 * 1024, "MemAvailable")
    (cg / "memory.max").write_text("8589934592\n")
    (cg / "memory.current").write_text("1073741824\n")
    assert budget.machine(str(meminfo), cg) == budget.Machine(7 * 2**30, "cgroup memory.max")
    (cg / "memory.max").write_text("max\n")
    assert budget.machine(str(meminfo), cg).source == "MemAvailable"


def _bdv2(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bdv2.cli", "train", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_plan_estimates_and_a_launch_that_cannot_fit_is_refused(tfdata: Path, tmp_path: Path) -> None:
    good = helpers.write_yaml(tmp_path / "m.yaml", {"global": helpers.base_global(tfdata, tmp_path / "runs"),
                                                    "runs": [{"algo": "gc_bc", "task": "kitchen/put_carrot"}]})
    out = _bdv2("--config", str(good), "--plan")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "device-bound" in out.stdout or "input-bound" in out.stdout
    assert "fits" in out.stdout and "16, 16, 3" not in out.stdout
    assert not (tmp_path / "runs").exists()  # --plan launches nothing
    # 10^9 slots of three 16 px images (2.4 kB each): 2.4 TB
    huge = helpers.write_yaml(tmp_path / "huge.yaml", {
        "global": helpers.base_global(tfdata, tmp_path / "runs", shuffle_buffer_size=10**9),
        "runs": [{"algo": "gc_bc", "task": "kitchen/put_carrot"}]})
    out = _bdv2("--config", str(huge))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "does NOT fit" in out.stdout and "nothing launched" in out.stdout
    fix = next(line for line in out.stdout.splitlines() if "fix: set shuffle_buffer_size:" in line)
    assert 1000 < int(fix.split("shuffle_buffer_size: ")[1].split()[0]) < 10**9
    assert not (tmp_path / "runs").exists()
