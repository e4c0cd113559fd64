"""The memory plan's arithmetic and verdict: what each run needs (plan.py measures it in a child process),
what this machine has, whether the launch fits, and if not, a fix that would (a shuffle_buffer_size that
fits, fewer runs at once, a smaller batch). Stdlib only: the launcher imports it.

    plan child -> RunPlan per run -> judge(plans, slots, Machine) -> Verdict (one line; a table with --plan)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bdv2.storage import StorageProblem, check_space, check_writable, remote_scheme, size

from .model import Run

HEADROOM = 0.9
"""Share of the available RAM a launch may plan to use: the rest is for the page cache and other processes."""
PLAN_TIMEOUT_S = {False: 600, True: 1800}
"""The plan child's time limit (quick, --full)."""


def gb(n: float) -> str:
    return size(n)


@dataclass(frozen=True)
class RunPlan:
    """One run's estimate (plan.estimate writes these fields)."""

    name: str
    platform: str
    devices: int
    shuffle_slots: int
    slot_bytes: float
    """Host bytes of one shuffle-buffer slot: one transition with its decoded images."""
    shuffle_bytes: int
    prefetch_bytes: int
    state_bytes: int
    checkpoint_bytes: int
    keep_checkpoints: int | None
    num_steps: int
    interpreter_bytes: int
    """What the run holds besides its shuffle buffers and batches in flight. Every launch: the plan process's
    peak resident set after it imported TF and jax and built the same pipelines, plus the state's bytes (nothing
    compiled). With ``compiled`` (--plan): its peak after it also compiled the train step and ran it (XLA, the
    runtime and, on the CPU, the step's own memory; its own small shuffle buffer taken out)."""
    save_interval: int = 0
    compiled: bool = False
    """Whether the plan compiled and ran the train step (--plan), so device memory and times were measured."""
    image_shapes: dict[str, list[int]] = field(default_factory=dict)
    device_bytes: int | None = None
    """From the compiled train step's memory analysis (--plan only)."""
    device_limit: int | None = None
    compile_s: float | None = None
    step_s: float | None = None
    batch_s: float | None = None
    """Seconds per batch of the input pipeline alone."""
    fill_s: float | None = None
    """Seconds until the first batch, with the run's full shuffle buffer (extrapolated)."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunPlan:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def on_cpu(self) -> bool:
        return self.platform == "cpu"

    @property
    def host_bytes(self) -> int:
        """Peak host RAM: the interpreter's measured peak (which on the CPU includes the train step's memory: the
        plan ran one) + the shuffle buffers + the batches in flight."""
        return self.interpreter_bytes + self.shuffle_bytes + self.prefetch_bytes

    @property
    def input_bound(self) -> bool | None:
        if self.step_s is None or self.batch_s is None:
            return None
        return self.batch_s > self.step_s

    @property
    def wall_s(self) -> float | None:
        """Training time for num_steps: the buffer fill, then the slower of the step and the input."""
        if self.step_s is None or self.batch_s is None:
            return None
        return (self.fill_s or 0.0) + (self.compile_s or 0.0) + self.num_steps * max(self.step_s, self.batch_s)

    def disk_bytes(self) -> int:
        """What its checkpoints take on disk: keep_checkpoints of them, plus one being written."""
        saves = -(-self.num_steps // self.save_interval) if self.save_interval > 0 else self.num_steps
        keep = min(self.keep_checkpoints, saves) if self.keep_checkpoints else saves
        return (keep + 1) * self.checkpoint_bytes


@dataclass(frozen=True)
class Machine:
    ram_bytes: int
    """Available RAM (MemAvailable, or the cgroup's limit less its use when that is lower)."""
    source: str


def _meminfo(path: str = "/proc/meminfo") -> dict[str, int]:
    out = {}
    with open(path) as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                out[key] = int(parts[0]) * (1024 if parts[-1] == "kB" else 1)
    return out


def _cgroup_free(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes left under this process's cgroup v2 memory limit (SLURM and containers set one), or None."""
    try:
        limit = (root / "memory.max").read_text().strip()
        used = int((root / "memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else int(limit) - used


def machine(meminfo: str = "/proc/meminfo", cgroup: Path = Path("/sys/fs/cgroup")) -> Machine:
    """What this host has for a launch (Linux: /proc/meminfo's MemAvailable, capped by a cgroup limit)."""
    info = _meminfo(meminfo)
    avail = info.get("MemAvailable", info.get("MemFree", 0))
    cg = _cgroup_free(cgroup)
    if cg is not None and cg < avail:
        return Machine(cg, "cgroup memory.max")
    return Machine(avail, "MemAvailable")


@dataclass(frozen=True)
class Verdict:
    fits: bool
    line: str
    """The one line every launch prints."""
    problems: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()


def concurrent_bytes(plans: Sequence[RunPlan], slots: int) -> int:
    """Host RAM of the worst moment: the ``slots`` largest runs at once."""
    return sum(sorted((p.host_bytes for p in plans), reverse=True)[:max(1, slots)])


def _fitting_buffer(plans: Sequence[RunPlan], slots: int, budget: float, current: int) -> int:
    """The largest shuffle_buffer_size (a multiple of 100, at most ``current``) with which the launch fits, or 0."""
    at_once = sorted(plans, key=lambda p: p.host_bytes, reverse=True)[:max(1, slots)]
    fixed = sum(p.host_bytes - p.shuffle_bytes for p in at_once)
    per_slot = sum(p.slot_bytes for p in at_once)
    if per_slot <= 0 or budget <= fixed:
        return 0
    return min(current, int((budget - fixed) / per_slot) // 100 * 100)


def judge(plans: Sequence[RunPlan], slots: int, have: Machine, shuffle_buffer_size: int | None = None) -> Verdict:
    """Whether the launch fits this machine; if not, what would (``slots``: runs at once)."""
    if not plans:
        return Verdict(True, "plan: no runs")
    slots = min(slots, len(plans))
    need = concurrent_bytes(plans, slots)
    budget = HEADROOM * have.ram_bytes
    biggest = max(plans, key=lambda p: p.host_bytes)
    each = (f"{gb(biggest.host_bytes)} per run (shuffle buffer {gb(biggest.shuffle_bytes)}: "
            f"{biggest.shuffle_slots} slots x {gb(biggest.slot_bytes)})")
    where = f" x {slots} at once = {gb(need)}" if slots > 1 else ""
    problems, fixes = [], []
    if need > budget:
        problems.append(f"host RAM: {gb(need)} needed, {gb(have.ram_bytes)} available ({have.source})")
        size = _fitting_buffer(plans, slots, budget, shuffle_buffer_size or biggest.shuffle_slots)
        if size > 0:
            fixes.append(f"set shuffle_buffer_size: {size} (or less) under global:")
        fit_runs = int(budget // biggest.host_bytes)
        if slots > 1 and fit_runs >= 1:
            fixes.append(f"run at most {fit_runs} at once (cuda_visible_devices with {fit_runs} GPU(s)), "
                         "or launch without --parallel")
        if not fixes:
            fixes.append("use a machine with more RAM, or a smaller train_batch_size and shuffle_buffer_size")
    for p in plans:
        if p.device_bytes is not None and p.device_limit is not None and p.device_bytes > p.device_limit:
            problems.append(f"{p.name}: device memory {gb(p.device_bytes)} needed, {gb(p.device_limit)} on the device")
            fixes.append(f"{p.name}: a smaller train_batch_size (about {gb(p.device_bytes - p.device_limit)} too much)")
    verdict = "fits" if not problems else "does NOT fit"
    unchecked = "" if all(p.compiled for p in plans) else " (device memory: checked by bdv2 train --plan)"
    line = f"plan: host RAM {each}{where}; {gb(have.ram_bytes)} available: {verdict}{unchecked}"
    return Verdict(not problems, line, tuple(problems), tuple(fixes))


def estimate(runs: Sequence[Run], env: Mapping[str, str], full: bool = False, python: str = sys.executable,
             timeout_s: float | None = None) -> list[RunPlan]:
    """Run plan.py in a child process (jax and TensorFlow stay out of the launcher) with ``env``; ``full``
    (--plan): compile, run and time each distinct train step, else shapes only (every launch).

    Raises:
        RuntimeError: the plan child failed; the message holds the last lines of its output.
    """
    with tempfile.TemporaryDirectory(prefix="bdv2-plan-") as tmp:
        path = Path(tmp) / "runs.json"
        path.write_text(json.dumps([r.to_dict() for r in runs]))
        argv = [python, "-P", "-m", "bdv2.trainer.plan", str(path)] + (["--full"] if full else [])
        try:
            proc = subprocess.run(argv, env=dict(env), capture_output=True, text=True,
                                  timeout=timeout_s or PLAN_TIMEOUT_S[full])
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"the plan took more than {e.timeout:.0f} s") from e
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"the plan's child process failed (exit {proc.returncode}): {tail}")
    plans = [RunPlan.from_dict(json.loads(line)) for line in proc.stdout.splitlines() if line.startswith("{")]
    return plans


@dataclass(frozen=True)
class LaunchCheck:
    """Everything checked before a launch: the memory verdict and the output folders."""

    plans: tuple[RunPlan, ...]
    verdict: Verdict | None
    """None: the plan itself could not run (``plan_error`` says why); the launch is not refused for that."""
    storage: tuple[StorageProblem, ...] = ()
    plan_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.storage and (self.verdict is None or self.verdict.fits)


def _remote_problem(save_dir: str) -> StorageProblem | None:
    """A URL save_dir that TensorFlow or orbax cannot open, or where an object cannot be written; None if fine."""
    from bdv2 import paths

    return (paths.scheme_problem(save_dir, "save_dir") or paths.orbax_problem(save_dir, "save_dir")
            or paths.check_writable(paths.GPath(save_dir), "save_dir"))


def check_storage(runs: Sequence[Run], plans: Sequence[RunPlan] = ()) -> list[StorageProblem]:
    """Each save_dir writable, with room for its runs' checkpoints (keep_checkpoints + the one being written).

    A URL save_dir (gs://...): a scheme TensorFlow and orbax can open, and an object written and removed there;
    its free space is unknown (an object store has no such figure) and not checked."""
    need: dict[Path, int] = {}
    by_name = {p.name: p for p in plans}
    problems = []
    seen: set[str] = set()
    for run in runs:
        if remote_scheme(run.settings.save_dir) is not None:
            if run.settings.save_dir not in seen:
                seen.add(run.settings.save_dir)
                bad = _remote_problem(run.settings.save_dir)
                if bad is not None:
                    problems.append(bad)
            continue
        folder = Path(run.settings.save_dir)
        if folder not in need:
            need[folder] = 0
            bad = check_writable(folder, "save_dir")
            if bad is not None:
                problems.append(bad)
        if run.name in by_name:
            need[folder] += by_name[run.name].disk_bytes()
    writable = {Path(p.folder) for p in problems}
    for folder, n in need.items():
        if folder not in writable and n:
            bad = check_space(folder, n, "save_dir")
            if bad is not None:
                problems.append(bad)
    return problems


def check_launch(runs: Sequence[Run], env: Mapping[str, str], slots: int, full: bool = False,
                 python: str = sys.executable) -> LaunchCheck:
    """The plan of every run (plan.py in a child), the verdict for ``slots`` runs at once, the output folders."""
    early = check_storage(runs)
    if early:  # an unwritable save_dir is refused at once, without the plan's seconds
        return LaunchCheck((), None, tuple(early))
    try:
        plans = tuple(estimate(runs, env, full, python))
    except RuntimeError as e:
        return LaunchCheck((), None, tuple(early), str(e))
    size = max((r.settings.shuffle_buffer_size for r in runs), default=None)
    return LaunchCheck(plans, judge(plans, slots, machine(), size), tuple(check_storage(runs, plans)))
