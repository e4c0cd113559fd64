"""`bdv2 train`: preflight through the doctor, one child process per run, a diagnosis for each failure,
and the summary table.

    Experiments -> preflight (doctor: findings + the repair plan's env edits)
                -> every run folder locked (runlock.py: a second launch of the same runs is refused)
                -> per run: child_env(...) -> `python -m bdv2.trainer.worker run.json` > <workdir>/train.log
                   (its own session; SIGINT/SIGTERM/SIGUSR1 passed on by process.Forwarder: it saves and stops)
                -> failed run: its log through the doctor's signatures (cause + fix)
                -> Outcome per run -> render_summary

Imports neither jax, TensorFlow nor numpy: the children do the heavy work.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from bdv2.console import PROGRESS_INTERVAL_S, make_console
from bdv2.devices import cuda_visible_ids, driver_gpus
from bdv2.doctor import Finding, Severity
from bdv2.fsutil import write_json_atomic
from bdv2.paths import AnyPath, GPath

from . import process, runlock, staging
from .budget import LaunchCheck, check_launch
from .childenv import child_env
from .errors import StorageError, TrainerError
from .failure import CHECKPOINT_DIR, ERROR_FILE, last_checkpoint, read_error, signal_failure, storage_failure
from .metrics import METRICS_FILE, read_metrics
from .model import Experiments, Outcome, Preflight, Run
from .report import RunsDisplay, render_dry_run, render_plan, render_preflight, render_summary
from .status import SUMMARY_FILE, RunStatus

__all__ = ["LOG_FILE", "RUN_FILE", "already_finished", "check_before_launch", "diagnose_failure", "doctor_preflight",
           "exit_code", "launch", "lock_runs", "plan_experiments", "prepare_workdir", "render_dry_run",
           "render_preflight", "render_summary", "run_experiments"]

LOG_FILE = staging.LOG_FILE
RUN_FILE = "run.json"


def doctor_preflight(python: str | None = None) -> Preflight:
    """The doctor's static checks (a fraction of a second) and its repair plan's environment edits; whether jax
    has a CUDA backend is the snapshot's answer (``Snapshot.jax_has_cuda``), the one the doctor's rules read.

    The one place that calls the doctor's repair API, so a change there is a change here only.
    """
    from bdv2.doctor import examine, load_matrix, plan_repair

    matrix = load_matrix()
    ex = examine(python=python, matrix=matrix)
    driver, snap = ex.snapshot.system.driver, ex.snapshot
    gpus = driver_gpus(driver.source, len(driver.gpus), driver.known)
    return Preflight(tuple(ex.findings), plan_repair(ex.findings, snap, matrix).env_ops, gpus, snap.jax_has_cuda)


def diagnose_failure(log_text: str) -> tuple[Finding, ...]:
    """The doctor's reading of a failed run's log: known causes first, else the lines that look like errors."""
    from bdv2.doctor import diagnose_log, load_matrix

    found = diagnose_log(log_text, load_matrix(), name=LOG_FILE)
    return tuple(f for f in found if f.severity is not Severity.INFO)


def _identity(path: AnyPath) -> tuple[int, int] | None:
    """(inode, mtime in ns) of ``path``: fsutil's atomic writes replace the file, so a rewrite changes it (an
    mtime alone can equal the start time: file times follow the kernel's coarse clock). A URL has no inode:
    (size, CRC-32 of the content) of the small file instead."""
    try:
        if isinstance(path, GPath):
            data = path.read_bytes()
            return len(data), zlib.crc32(data)
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _summary(run: Run, before: tuple[int, int] | None) -> dict[str, Any]:
    """The child's summary.json if it wrote one (``before``: the file's _identity when the child started; an
    unchanged file belongs to an earlier launch)."""
    path = run.workdir / SUMMARY_FILE
    now = _identity(path)
    if now is None or now == before:
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _result(run: Run, rc: int, log: Path, wall: float, diagnose: Callable[[str], tuple[Finding, ...]],
            before: tuple[int, int] | None = None) -> Outcome:
    """A run's outcome: finished when its summary says so (even if the process was killed afterwards), else its
    failure named (bdv2's own error, a signal) or, for other exits, the doctor's reading of its log."""
    summary = _summary(run, before)
    status = summary.get("status")
    if status == RunStatus.PREEMPTED:  # the child saved its step on the way out; the notes say which and why
        notes = tuple(f"{n}; re-run the same command to resume" if n.startswith("preempted") else n
                      for n in summary.get("notes", ()))
        return Outcome(run.name, RunStatus.PREEMPTED, summary["steps"], summary.get("train_loss"),
                       summary.get("val_loss"), wall, summary.get("checkpoint", ""), str(log), notes=notes)
    if status == RunStatus.FINISHED or (rc == 0 and status == RunStatus.STOPPED):
        after = signal_failure(rc, run.workdir, run.config_file)
        notes = tuple(summary.get("notes", ())) + ((f"finished; its process was then {after.title}",)
                                                   if after else ())
        return Outcome(run.name, RunStatus(status), summary["steps"], summary.get("train_loss"),
                       summary.get("val_loss"), wall, summary.get("checkpoint", ""), str(log), notes=notes)
    records = read_metrics(run.workdir)
    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "val"]
    failure = (read_error(run.workdir) or storage_failure(rc, run.workdir, run.config_file)
               or signal_failure(rc, run.workdir, run.config_file))
    diagnosis: tuple[Finding, ...] = ()
    if failure is None:
        text = log.read_text(errors="replace") if log.exists() else ""
        diagnosis = diagnose(text + f"\n(exit code {rc})")
    step = last_checkpoint(run.workdir)  # where the next launch resumes
    resume_from = str(run.workdir / CHECKPOINT_DIR / str(step)) if step is not None else ""
    checkpoint = summary.get("checkpoint") or resume_from
    return Outcome(run.name, RunStatus.FAILED, train[-1]["step"] if train else 0,
                   train[-1].get("loss") if train else None, val[-1].get("loss") if val else None, wall,
                   checkpoint, str(log), diagnosis, failure=failure)


def already_finished(run: Run) -> Outcome | None:
    """The outcome of a run that an earlier launch finished: its summary.json says finished at num_steps or
    later and its last checkpoint is there. Starting it again would only load the checkpoint and rewrite the
    summary with the time of that (its training time lost), so it is not started; None for any other run."""
    try:
        summary = json.loads((run.workdir / SUMMARY_FILE).read_text())
        steps = int(summary["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    last = last_checkpoint(run.workdir)
    if summary.get("status") != RunStatus.FINISHED or steps < run.settings.num_steps or (last or 0) < steps:
        return None
    return Outcome(run.name, RunStatus.FINISHED, steps, summary.get("train_loss"), summary.get("val_loss"),
                   float(summary.get("wall_s") or 0.0), str(summary.get("checkpoint") or ""),
                   str(run.workdir / LOG_FILE),
                   notes=("finished by an earlier launch: not started again (its summary.json and training time "
                          "are kept; --no-resume trains it afresh, or raise num_steps to train on)",))


def prepare_workdir(run: Run, resume: bool) -> None:
    """--no-resume keeps the old run: it is renamed <name>.old-<time>, never deleted (the run's lock, if this
    launch holds it, stays with the run's name)."""
    if not resume and run.workdir.exists():
        old = run.workdir.with_name(f"{run.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        run.workdir.rename(str(old))  # a URL: every object under it, where the file system can (paths.GPath)
        run.workdir.mkdir(parents=True)
        if (old / runlock.LOCK_FILE).exists():
            (old / runlock.LOCK_FILE).rename(str(run.workdir / runlock.LOCK_FILE))
    run.workdir.mkdir(parents=True, exist_ok=True)
    (run.workdir / ERROR_FILE).unlink(missing_ok=True)  # an earlier launch's error is not this one's
    write_json_atomic(run.workdir / RUN_FILE, run.to_dict(), indent=2, sort_keys=False)


def _start(run: Run, env: Mapping[str, str], python: str) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    # A remote run folder: the log grows in its local copy, put into the folder at each checkpoint (by the
    # child) and when the child ends (by _supervise), staging.py.
    local_log = staging.download(run.workdir, LOG_FILE, longer_only=True)
    log = open(local_log, "ab")  # noqa: SIM115 - closed by the caller when the child ends
    if isinstance(run.workdir, GPath):
        env = {**env, staging.LOG_ENV: str(local_log)}
    # -P: the current directory must not shadow the installed bdv2 (a source checkout's bdv2/ folder would).
    argv = [python, "-P", "-m", "bdv2.trainer.worker", str(run.workdir / RUN_FILE)]
    # A session of its own: a terminal's Ctrl-C reaches the child once, through the launcher (process.Forwarder);
    # with the launcher's pid it stops (and saves) if the launcher dies (process.die_with_parent).
    env = {**env, process.PARENT_ENV: str(os.getpid())}
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True), log


def _last_step(run: Run) -> int:
    """The progress of a child, from the tail of its metrics file (its local copy, for a remote run folder)."""
    path = staging.local_file(run.workdir, METRICS_FILE)
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = f.read().decode(errors="replace").splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError, IndexError):
        return 0


@dataclass
class _Child:
    run: Run
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    t0: float
    before: tuple[int, int] | None
    """summary.json's _identity when the child started."""
    gpu: str | None
    """The GPU id this child was given (its CUDA_VISIBLE_DEVICES), or a CPU slot's name (CPU_SLOT...)."""


CPU_SLOT = "cpu-slot-"
"""Prefix of the slots of ``cpu_parallel``: children sharing the CPU, no GPU assigned."""


def _slots(exp: Experiments, parallel: bool, environ: Mapping[str, str], cpu_parallel: int = 1) -> list[str | None]:
    """--parallel: one GPU id per child (config.load checked them against the driver); ``cpu_parallel`` > 1:
    that many children at once on the CPU (runs whose jax platform is the CPU); else one slot."""
    if cpu_parallel > 1 and exp.runs:
        return [f"{CPU_SLOT}{i}" for i in range(cpu_parallel)]
    if not (parallel and exp.runs):
        return [None]
    cvd = exp.runs[0].settings.cuda_visible_devices
    gpus = cuda_visible_ids(cvd if cvd is not None else environ.get("CUDA_VISIBLE_DEVICES", ""))
    return list(gpus) if len(gpus) > 1 else [None]


def lock_runs(runs: Sequence[Run], console: Console) -> list[runlock.Lock]:
    """The lock of every run folder, taken before the first run starts (a stale lock's takeover is noted).

    Raises:
        RunLockedError: a run is being trained by another process (all locks taken so far are released).
        StorageError: a run folder where the lock cannot be written.
    """
    locks: list[runlock.Lock] = []
    try:
        for run in runs:
            try:
                locks.append(runlock.acquire(run.workdir))
            except OSError as e:
                raise StorageError(f"{run.workdir}: cannot write the run's lock file {runlock.LOCK_FILE} "
                                   f"({e.strerror}); make save_dir writable or choose another save_dir") from e
            if locks[-1].note:
                console.print(f"note: {run.name}: {locks[-1].note}", highlight=False, markup=False)
    except TrainerError:
        for lock in locks:
            lock.release()
        raise
    return locks


def _announce(forwarder: process.Forwarder, seen: int, running: int, console: Console) -> int:
    """One line per stop signal received since ``seen``; returns how many have been announced."""
    for sig in forwarder.received[seen:]:
        name = signal.Signals(sig).name
        if sig == signal.SIGINT and forwarder.interrupts > 1:
            console.print(f"bdv2 train: {name} again: stopping the runs at once, without saving", highlight=False)
        else:
            console.print(f"bdv2 train: {name} received: {running} running run(s) finish their step and save a "
                          "checkpoint; no new run starts (Ctrl-C again to stop at once, without saving)",
                          highlight=False, markup=False)
    return len(forwarder.received)


def launch(exp: Experiments, preflight: Preflight, *, resume: bool = True, parallel: bool = False,
           fail_fast: bool = False, console: Console | None = None, python: str = sys.executable,
           environ: Mapping[str, str] | None = None,
           diagnose: Callable[[str], tuple[Finding, ...]] = diagnose_failure, verbose: bool = False,
           progress_interval: float = PROGRESS_INTERVAL_S, cpu_parallel: int = 1,
           forwarder: process.Forwarder | None = None) -> list[Outcome]:
    """Run every experiment in its own child process; a failure does not stop the others (unless fail_fast).

    With ``parallel`` and several GPUs in cuda_visible_devices, one run per GPU at a time; with
    ``cpu_parallel`` > 1, that many CPU runs at a time (the demo: start-up of one overlaps training of another).
    Every run folder is locked first (runlock.py). SIGINT, SIGTERM and SIGUSR1 are passed on to the running
    children (``forwarder``), which save and stop; runs not yet started are skipped.

    Raises:
        RunLockedError: another process trains one of the runs; nothing was started.
    """
    console = console or make_console(stderr=True)
    environ = os.environ if environ is None else environ
    slots = _slots(exp, parallel, environ, cpu_parallel)
    locks = lock_runs(exp.runs, console)
    try:
        with forwarder or process.Forwarder() as fwd:
            return _supervise(exp, preflight, resume, fail_fast, console, python, environ, diagnose, verbose,
                              progress_interval, slots, fwd)
    finally:
        for lock in locks:
            lock.release()


def _supervise(exp: Experiments, preflight: Preflight, resume: bool, fail_fast: bool, console: Console,
               python: str, environ: Mapping[str, str], diagnose: Callable[[str], tuple[Finding, ...]],
               verbose: bool, progress_interval: float, slots: list[str | None],
               fwd: process.Forwarder) -> list[Outcome]:
    pending: list[Run] = []
    running: dict[str, _Child] = {}
    outcomes: dict[str, Outcome] = {}
    for run in exp.runs:
        done = already_finished(run) if resume else None
        if done is None:
            pending.append(run)
            continue
        outcomes[run.name] = done
        console.print(f"{run.name}: already finished ({done.steps} steps), not started again", highlight=False,
                      markup=False)
    stop = False
    announced = 0
    with RunsDisplay(console, progress_interval) as display:
        while pending or running:
            free = [g for g in slots if g not in {c.gpu for c in running.values()}]
            while pending and free and not stop and not fwd.received:
                run, gpu = pending.pop(0), free.pop(0)
                prepare_workdir(run, resume)
                env = child_env(run.settings, environ, preflight.env_ops, verbose)
                if gpu is not None and not gpu.startswith(CPU_SLOT):
                    env["CUDA_VISIBLE_DEVICES"] = gpu
                before = _identity(run.workdir / SUMMARY_FILE)
                proc, log = _start(run, env, python)
                fwd.children.append(proc)
                display.add(run.name, run.settings.num_steps, last_checkpoint(run.workdir) or 0)
                running[run.name] = _Child(run, proc, log, time.perf_counter(), before, gpu)
            if stop or fwd.received:
                why = f"bdv2 train was stopped by {fwd.name}" if fwd.received else "--fail-fast: an earlier run failed"
                for run in pending:
                    outcomes[run.name] = Outcome(run.name, RunStatus.SKIPPED, notes=(f"not started: {why}",))
                pending = []
            announced = _announce(fwd, announced, len(running), console)
            time.sleep(0.5)
            for name, child in list(running.items()):
                elapsed = time.perf_counter() - child.t0
                display.update(name, _last_step(child.run), elapsed)
                if child.proc.poll() is None:
                    continue
                child.log.close()
                with contextlib.suppress(OSError):  # the outcome below names a run folder that cannot be written
                    staging.upload(child.run.workdir, LOG_FILE)
                del running[name]
                fwd.children.remove(child.proc)
                outcome = _result(child.run, child.proc.returncode, staging.local_file(child.run.workdir, LOG_FILE),
                                  elapsed, diagnose, child.before)
                outcomes[name] = outcome
                display.done(name, outcome)
                if outcome.status is RunStatus.FAILED and fail_fast:
                    stop = True
    return [outcomes[r.name] for r in exp.runs]


def check_before_launch(exp: Experiments, pre: Preflight, *, parallel: bool, verbose: bool = False,
                        full: bool = False, cpu_parallel: int = 1, environ: Mapping[str, str] | None = None,
                        python: str = sys.executable) -> LaunchCheck:
    """The memory plan of every run (in a child with the first run's environment, on the first slot's GPU) and
    the output folders, for as many runs at once as the launch will start."""
    environ = os.environ if environ is None else environ
    slots = _slots(exp, parallel, environ, cpu_parallel)
    if not exp.runs:
        return LaunchCheck((), None)
    env = child_env(exp.runs[0].settings, environ, pre.env_ops, verbose)
    if slots[0] is not None and not slots[0].startswith(CPU_SLOT):
        env["CUDA_VISIBLE_DEVICES"] = slots[0]
    return check_launch(exp.runs, env, len(slots), full, python)


def plan_experiments(exp: Experiments, pre: Preflight, console: Console, *, parallel: bool,
                     verbose: bool = False) -> int:
    """`bdv2 train --plan`: every run's estimate (compiled step, timed steps and input) and the verdict;
    launches nothing. Exit code 0 when the launch would fit, 1 otherwise."""
    render_preflight(pre, console)
    check = check_before_launch(exp, pre, parallel=parallel, verbose=verbose, full=True)
    render_plan(check, console, full=True)
    return 0 if check.ok and check.verdict is not None else 1


def run_experiments(exp: Experiments, pre: Preflight, console: Console, *, resume: bool, force: bool,
                    parallel: bool, fail_fast: bool, verbose: bool = False,
                    progress_interval: float = PROGRESS_INTERVAL_S, cpu_parallel: int = 1) -> int:
    """What `bdv2 train` does after loading the config (and `bdv2 demo` after building its data): the
    preflight verdict, every run, the summary table; the exit code (0 when every run finished)."""
    render_preflight(pre, console)
    if pre.errors and not force:
        console.print(f"[red]preflight: {len(pre.errors)} error(s) above; nothing launched[/] "
                      "(fix them, or pass --force to launch anyway)")
        return 1
    for note in exp.notes:
        console.print(f"note: {note}")
    forwarder = process.Forwarder()
    try:
        for run in exp.runs:  # before the plan: a second launch of the same runs is refused at once
            runlock.check(run.workdir)
        check = check_before_launch(exp, pre, parallel=parallel, verbose=verbose, cpu_parallel=cpu_parallel)
        render_plan(check, console, full=False)
        if not check.ok:
            if not force:
                console.print("[red]nothing launched[/] (apply a fix above, or pass --force to launch anyway)")
                return 1
            console.print("--force: launching anyway")
        outcomes = launch(exp, pre, resume=resume, parallel=parallel, fail_fast=fail_fast, console=console,
                          verbose=verbose, progress_interval=progress_interval, cpu_parallel=cpu_parallel,
                          forwarder=forwarder)
    except TrainerError as e:  # a run folder owned by another process (or one its lock cannot be written in)
        console.print(f"bdv2 train: {e}", highlight=False, markup=False)
        return 1
    except KeyboardInterrupt:  # Ctrl-C during the plan: no run had started
        console.print("bdv2 train: interrupted before any run started", highlight=False, markup=False)
        return 128 + signal.SIGINT
    render_summary(outcomes, console)
    for png in plot_launch(exp, outcomes):
        console.print(f"learning curves: {png}", markup=False, highlight=False)
    return exit_code(outcomes, forwarder)


def exit_code(outcomes: Sequence[Outcome], forwarder: process.Forwarder) -> int:
    """0 every run finished; 130 after Ctrl-C (the shell's code for SIGINT); process.PREEMPTED_EXIT when runs
    were stopped by another signal, each saved; else 1."""
    if all(o.status is RunStatus.FINISHED for o in outcomes):
        return 0
    if forwarder.interrupts:
        return 128 + signal.SIGINT
    if any(o.status is RunStatus.FAILED for o in outcomes):
        return 1
    return process.PREEMPTED_EXIT if any(o.status is RunStatus.PREEMPTED for o in outcomes) else 1


def plot_launch(exp: Experiments, outcomes: Sequence[Outcome]) -> list[AnyPath]:
    """learning_curves.png in each save_dir, with the runs of this launch that logged a step (plot.py); a run
    that logged nothing (it failed at start-up) is left out, and a figure that cannot be drawn is skipped."""
    from .plot import CURVES_FILE, PlotError, plot_runs

    launched = {o.name for o in outcomes}
    by_dir: dict[AnyPath, list[AnyPath]] = {}
    for run in exp.runs:
        if run.name in launched and (run.workdir / METRICS_FILE).is_file():
            by_dir.setdefault(run.workdir.parent, []).append(run.workdir)
    written = []
    for save_dir, run_dirs in by_dir.items():
        try:
            written.append(plot_runs(run_dirs, save_dir / CURVES_FILE))
        except (PlotError, ImportError, OSError):  # the figure is a convenience: never fail the launch for it
            continue
    return written


