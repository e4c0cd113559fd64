"""`bdv2 train`: preflight through the doctor, one child process per run, a diagnosis for each failure,
and the summary table.

    Experiments -> preflight (doctor: findings + the repair plan's env edits)
                -> per run: child_env(...) -> `python -m bdv2.trainer.worker run.json` > <workdir>/train.log
                -> failed run: its log through the doctor's signatures (cause + fix)
                -> Outcome per run -> render_summary

Imports neither jax, TensorFlow nor numpy: the children do the heavy work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, assert_never

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bdv2.doctor import EnvOp, EnvOpKind, Finding, Severity, apply_env, merge_flags
from bdv2.fsutil import write_json_atomic
from bdv2.trainer.config import Experiments, Run, Settings
from bdv2.trainer.settings import run_env
from bdv2.trainer.status import SUMMARY_FILE, RunStatus

LOG_FILE = "train.log"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class Preflight:
    findings: tuple[Finding, ...] = ()
    env_ops: tuple[EnvOp, ...] = ()
    """The doctor's repair plan, environment part: what `bdv2 run` gives its child too."""

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)


@dataclass(frozen=True)
class Outcome:
    name: str
    status: RunStatus
    steps: int = 0
    train_loss: float | None = None
    val_loss: float | None = None
    wall_s: float = 0.0
    checkpoint: str = ""
    log: str = ""
    diagnosis: tuple[Finding, ...] = field(default=())
    notes: tuple[str, ...] = ()


def doctor_preflight(python: str | None = None) -> Preflight:
    """The doctor's static checks (about a second) and its repair plan's environment edits.

    The one place that calls the doctor's repair API, so a change there is a change here only.
    """
    from bdv2.doctor import examine, load_matrix, plan_repair

    matrix = load_matrix()
    ex = examine(python=python, matrix=matrix)
    return Preflight(tuple(ex.findings), plan_repair(ex.findings, ex.snapshot, matrix).env_ops)


def child_env(s: Settings, environ: Mapping[str, str], doctor_ops: Sequence[EnvOp]) -> dict[str, str]:
    """The environment of one run's child process.

    The doctor's edits come first: it knows when putting the pip CUDA wheels on LD_LIBRARY_PATH helps (old
    jaxlib) and when it hurts, so ``use_pip_cuda_libs`` only allows its PREPENDs rather than injecting blindly.
    The YAML's flags are merged into XLA_FLAGS (the user's own flags are kept, unlike the fork's replace).
    """
    ops = [op for op in doctor_ops
           if s.use_pip_cuda_libs or not (op.op is EnvOpKind.PREPEND and op.name == "LD_LIBRARY_PATH")]
    env = apply_env(ops, environ)
    wanted = run_env(s)  # the same keys config.py counted the run's devices from
    for key, value in wanted.items():
        env[key] = merge_flags(env.get(key, ""), value) if key == "XLA_FLAGS" else value
    if "JAX_PLATFORMS" in wanted:
        env.pop("JAX_PLATFORM_NAME", None)  # deprecated spelling; JAX_PLATFORMS wins anyway
    env["PYTHONUNBUFFERED"] = "1"  # the log shows the last line before a crash
    return env


def diagnose_failure(log_text: str) -> tuple[Finding, ...]:
    """The doctor's reading of a failed run's log: known causes first, else the lines that look like errors."""
    from bdv2.doctor import diagnose_log, load_matrix

    found = diagnose_log(log_text, load_matrix(), name=LOG_FILE)
    return tuple(f for f in found if f.severity is not Severity.INFO)


def _result(run: Run, rc: int, log: Path, wall: float, diagnose: Callable[[str], tuple[Finding, ...]]) -> Outcome:
    summary_path = run.workdir / SUMMARY_FILE
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if rc == 0 and summary.get("status") in (RunStatus.FINISHED, RunStatus.STOPPED):
        return Outcome(run.name, RunStatus(summary["status"]), summary["steps"], summary.get("train_loss"),
                       summary.get("val_loss"), wall, summary.get("checkpoint", ""), str(log),
                       notes=tuple(summary.get("notes", ())))
    from bdv2.trainer.metrics import read_metrics

    records = read_metrics(run.workdir)
    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "val"]
    text = log.read_text(errors="replace") if log.exists() else ""
    return Outcome(run.name, RunStatus.FAILED, train[-1]["step"] if train else 0,
                   train[-1].get("loss") if train else None, val[-1].get("loss") if val else None, wall,
                   summary.get("checkpoint", ""), str(log), diagnose(text + f"\n(exit code {rc})"))


def prepare_workdir(run: Run, resume: bool) -> None:
    """--no-resume keeps the old run: it is renamed <name>.old-<time>, never deleted."""
    if not resume and run.workdir.exists():
        run.workdir.rename(run.workdir.with_name(f"{run.name}.old-{time.strftime('%Y%m%d-%H%M%S')}"))
    run.workdir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run.workdir / RUN_FILE, run.to_dict(), indent=2, sort_keys=False)


def _start(run: Run, env: Mapping[str, str], python: str) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    log = open(run.workdir / LOG_FILE, "ab")  # noqa: SIM115 - closed by the caller when the child ends
    # -P: the current directory must not shadow the installed bdv2 (a source checkout's bdv2/ folder would).
    argv = [python, "-P", "-m", "bdv2.trainer.worker", str(run.workdir / RUN_FILE)]
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(env)), log


def _last_step(run: Run) -> int:
    """The progress of a child, from the tail of its metrics file."""
    path = run.workdir / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = f.read().decode(errors="replace").splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError, IndexError):
        return 0


def launch(exp: Experiments, preflight: Preflight, *, resume: bool = True, parallel: bool = False,
           fail_fast: bool = False, console: Console | None = None, python: str = sys.executable,
           environ: Mapping[str, str] | None = None,
           diagnose: Callable[[str], tuple[Finding, ...]] = diagnose_failure) -> list[Outcome]:
    """Run every experiment in its own child process; a failure does not stop the others (unless fail_fast).

    With ``parallel`` and several GPUs in cuda_visible_devices, one run per GPU at a time.
    """
    console = console or Console(stderr=True)
    environ = os.environ if environ is None else environ
    gpus = [g.strip() for g in (exp.runs[0].settings.cuda_visible_devices or "").split(",") if g.strip()] \
        if exp.runs else []
    slots = gpus if parallel and len(gpus) > 1 else [None]
    pending = list(exp.runs)
    running: dict[str, tuple[Run, subprocess.Popen[bytes], IO[bytes], float, str | None, TaskID]] = {}
    outcomes: dict[str, Outcome] = {}
    stop = False
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        while pending or running:
            free = [g for g in slots if g not in {r[4] for r in running.values()}]
            while pending and free and not stop:
                run, gpu = pending.pop(0), free.pop(0)
                prepare_workdir(run, resume)
                env = child_env(run.settings, environ, preflight.env_ops)
                if gpu is not None:
                    env["CUDA_VISIBLE_DEVICES"] = gpu
                proc, log = _start(run, env, python)
                task = progress.add_task(run.name, total=run.settings.num_steps, rate="")
                running[run.name] = (run, proc, log, time.perf_counter(), gpu, task)
            if stop:
                for run in pending:
                    outcomes[run.name] = Outcome(run.name, RunStatus.SKIPPED,
                                                 notes=("--fail-fast: an earlier run failed",))
                pending = []
            time.sleep(0.5)
            for name, (run, proc, log, t0, _, task) in list(running.items()):
                step = _last_step(run)
                elapsed = time.perf_counter() - t0
                progress.update(task, completed=step, rate=f"{step / elapsed:.1f} steps/s" if step else "")
                if proc.poll() is None:
                    continue
                log.close()
                del running[name]
                outcome = _result(run, proc.returncode, run.workdir / LOG_FILE, elapsed, diagnose)
                outcomes[name] = outcome
                progress.update(task, completed=outcome.steps, description=f"{name} [{outcome.status}]")
                if outcome.status is RunStatus.FAILED and fail_fast:
                    stop = True
    return [outcomes[r.name] for r in exp.runs]


def run_experiments(exp: Experiments, pre: Preflight, console: Console, *, resume: bool, force: bool,
                    parallel: bool, fail_fast: bool) -> int:
    """What `bdv2 train` does after loading the config (and `bdv2 demo` after building its data): the
    preflight verdict, every run, the summary table; the exit code (0 when every run finished)."""
    render_preflight(pre, console)
    if pre.errors and not force:
        console.print(f"[red]preflight: {len(pre.errors)} error(s) above; nothing launched[/] "
                      "(fix them, or pass --force to launch anyway)")
        return 1
    for note in exp.notes:
        console.print(f"note: {note}")
    outcomes = launch(exp, pre, resume=resume, parallel=parallel, fail_fast=fail_fast, console=console)
    render_summary(outcomes, console)
    return 0 if all(o.status is RunStatus.FINISHED for o in outcomes) else 1


def _loss(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _colour(status: RunStatus) -> str:
    match status:
        case RunStatus.FINISHED:
            return "green"
        case RunStatus.FAILED:
            return "red"
        case RunStatus.STOPPED | RunStatus.SKIPPED:
            return "yellow"
        case _:
            assert_never(status)


def render_summary(outcomes: Sequence[Outcome], console: Console) -> None:
    table = Table(title="bdv2 train: summary")
    for col in ("run", "status", "steps", "train loss", "val loss", "wall", "checkpoint"):
        table.add_column(col, justify="right" if col in ("steps", "train loss", "val loss", "wall") else "left")
    for o in outcomes:
        table.add_row(o.name, f"[{_colour(o.status)}]{o.status}[/]", str(o.steps), _loss(o.train_loss),
                      _loss(o.val_loss), f"{o.wall_s:.0f} s", o.checkpoint or "-")
    console.print(table)
    for o in outcomes:
        for note in o.notes:
            console.print(f"  {o.name}: {note}")
        for f in o.diagnosis:
            console.print(f"[red]✗ {o.name}[/]: {f.title}")
            for line in f.evidence[:3]:
                console.print(f"    {line}")
            if f.fix is not None:
                console.print(f"    fix: {f.fix.summary}")
                for cmd in f.fix.commands:
                    console.print(f"      $ {cmd}")
        if o.log and o.status is RunStatus.FAILED:
            console.print(f"    log: {o.log}")


def render_preflight(pre: Preflight, console: Console) -> None:
    for f in pre.findings:
        if f.severity is Severity.INFO:
            continue
        mark = "[red]✗[/]" if f.severity is Severity.ERROR else "[yellow]![/]"
        console.print(f"{mark} {f.title}" + (f"\n    fix: {f.fix.summary}" if f.fix else ""))


def render_dry_run(exp: Experiments, pre: Preflight, console: Console, environ: Mapping[str, str]) -> None:
    """Each run with every resolved setting, its data and the environment its child would get."""
    defaults = Settings(data_root="", save_dir="")
    for note in exp.notes:
        console.print(f"note: {note}")
    for run in exp.runs:
        console.rule(f"{run.name}  ({run.algo} on {run.task.name})")
        console.print(f"  workdir:   {run.workdir}\n  metadata:  {run.task.metadata}\n  decay:     {run.decay_steps}")
        for src in run.task.sources:
            if src.rlds_train:  # read in place through data_tools.rlds
                console.print(f"  data:      {src.pattern}  weight {src.weight:.3g}: RLDS "
                              f"{', '.join(src.rlds_train)} (train; val from {len(src.rlds_val)} of them)")
                continue
            console.print(f"  data:      {src.pattern}  weight {src.weight:.3g}: {len(src.train_files)} train / "
                          f"{len(src.val_files)} val files")
        changed = {k: v for k, v in vars(run.settings).items() if getattr(defaults, k) != v}
        console.print("  settings:  " + ", ".join(f"{k}={v}" for k, v in changed.items()))
        env = child_env(run.settings, environ, pre.env_ops)
        diff = {k: v for k, v in env.items() if environ.get(k) != v}
        gone = [k for k in environ if k not in env]
        console.print("  env:       " + (", ".join(f"{k}={v}" for k, v in sorted(diff.items())) or "(unchanged)")
                      + (f"; unset {', '.join(gone)}" if gone else ""))

