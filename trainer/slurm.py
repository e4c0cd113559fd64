"""`bdv2 train --slurm`: the runs of a config as one sbatch script, and with --submit the submitted job.

    Experiments + SlurmOptions + the doctor's env edits -> job_script -> <save_dir>/slurm/<config>.sbatch
                                                        -> submit: sbatch --parsable -> the job id

Layouts. One job-array task per run (``--array=0-<n-1>``, one node each), or with ``nodes`` > 1 one run across
the nodes, one task per node: the workers join through jax.distributed, which reads Slurm's environment
(hosts.py). Every task runs the run's worker (`python -m bdv2.trainer.worker run.json`) under srun, in the
environment `bdv2 train` gives its children (childenv.child_ops, written as shell by the doctor's
shell_lines), except CUDA_VISIBLE_DEVICES: Slurm sets it to the GPUs it allocated (--gres).

Preemption and time limits. ``--signal=USR1@120`` without "B:": Slurm sends SIGUSR1 to the job steps, the srun
tasks that run the workers, and not to the batch shell ("B:" would signal only the shell;
https://slurm.schedmd.com/sbatch.html#OPT_signal), about two minutes before the time limit. The worker finishes
its step, saves and exits with PREEMPTED_EXIT; the script then requeues its own job (``scontrol requeue``; an
array task requeues itself alone), which starts again later and resumes from that checkpoint. ``--requeue`` lets
Slurm requeue the job after a node failure or a preemption (whose SIGTERM the worker answers the same way),
and ``--open-mode=append`` keeps every attempt's lines in one log.

Stdlib only at import (the CLI imports it before any heavy module).
"""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bdv2 import __version__
from bdv2.console import QUIET_ENV
from bdv2.devices import DeviceView, cuda_visible_ids, requested_platforms
from bdv2.paths import GPath, local_shadow
from bdv2.storage import remote_scheme

from .batching import batch_sizes, check_divisible
from .childenv import CHILD_EXTRA, child_ops
from .errors import TrainerError
from .process import PREEMPTED_EXIT

if TYPE_CHECKING:
    from rich.console import Console

    from bdv2.doctor import EnvOp

    from .model import Experiments, Preflight, Run

SIGNAL = "USR1"
SLURM_DIR = "slurm"
"""Under the first run's save_dir: the job script and the jobs' logs."""
_OPTION_VALUE = re.compile(r"^[^\s'\"\\]+$")


class SlurmError(TrainerError):
    """A --slurm request that cannot become a job (options, runs, sbatch itself); the message says what to do."""


@dataclass(frozen=True)
class SlurmOptions:
    """What the job asks Slurm for (sbatch's own option names)."""

    partition: str | None = None
    """None: the cluster's default partition."""
    time: str | None = None
    """Time limit in sbatch's formats (12:00:00, 2-00:00:00); None: the partition's default."""
    gpus: int | None = None
    """GPUs per node (--gres=gpu:N). None: as many as the runs' cuda_visible_devices lists, else 1; runs on the
    CPU (jax_platform_name: cpu) ask for none."""
    nodes: int = 1
    """More than 1: one run across that many nodes (one task per node)."""
    cpus_per_task: int = 8
    """CPU cores per task: tf.data decodes and augments on them."""
    mem: str | None = None
    """Memory per node (--mem, e.g. 64G); None: the partition's default."""
    signal_s: int = 120
    """Seconds before the time limit at which the workers get SIGUSR1 and save."""
    extra: tuple[str, ...] = ()
    """More sbatch options, one per #SBATCH line (e.g. --account=lab, --qos=high)."""

    def check(self) -> None:
        """Raises SlurmError naming the option and what it allows."""
        for name, n, low in (("--gpus", 0 if self.gpus is None else self.gpus, 0), ("--nodes", self.nodes, 1),
                             ("--cpus-per-task", self.cpus_per_task, 1), ("--signal-time", self.signal_s, 1)):
            if n < low:
                raise SlurmError(f"{name} {n}: must be at least {low}")
        for name, value in (("--partition", self.partition), ("--time", self.time), ("--mem", self.mem)):
            if value is not None and not _OPTION_VALUE.match(value):
                raise SlurmError(f"{name} {value!r}: one word without spaces or quotes, as sbatch takes it")
        for arg in self.extra:
            if not arg.startswith("-") or "\n" in arg:
                raise SlurmError(f"--sbatch-arg {arg!r}: one sbatch option per --sbatch-arg, e.g. "
                                 "--sbatch-arg=--account=lab")


@dataclass(frozen=True)
class JobScript:
    path: Path
    text: str
    runs: tuple[str, ...]
    log_pattern: str
    """Where the jobs' output goes (Slurm's %x/%A/%a/%j patterns)."""

    @property
    def array(self) -> bool:
        return len(self.runs) > 1


def job_view(pre: Preflight, opts: SlurmOptions, environ: Mapping[str, str]) -> DeviceView:
    """The devices config.load checks the runs against: a node of the job (``opts.gpus`` GPUs, or unknown),
    not this machine; Slurm sets CUDA_VISIBLE_DEVICES there, so this shell's is left out."""
    env = {k: v for k, v in environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return DeviceView(env, opts.gpus, pre.gpu_backend)


def on_cpu(run: Run) -> bool:
    """Whether the run asks for the CPU (jax_platform_name: cpu), so its job needs no GPU."""
    from .settings import run_env

    platforms = requested_platforms(run_env(run.settings))
    return bool(platforms) and platforms[0] == "cpu"


def job_gpus(runs: Sequence[Run], opts: SlurmOptions) -> int:
    """GPUs per node the job asks for (SlurmOptions.gpus)."""
    if all(on_cpu(r) for r in runs):
        return 0
    if opts.gpus is not None:
        return opts.gpus
    listed = [len(cuda_visible_ids(r.settings.cuda_visible_devices)) for r in runs
              if r.settings.cuda_visible_devices is not None]
    return max(listed, default=1) or 1


def check_runs(runs: Sequence[Run], opts: SlurmOptions) -> None:
    """The runs fit the job's layout: one run for several nodes, batch sizes that split over the job's GPUs.

    Raises:
        SlurmError: several runs on several nodes, or no run.
        ConfigError: a batch size the job's GPUs do not divide (naming the file and the key).
    """
    opts.check()
    if not runs:
        raise SlurmError("no run selected: nothing to submit")
    if opts.nodes > 1 and len(runs) > 1:
        raise SlurmError(f"--nodes {opts.nodes} trains one run across the nodes, and the config has {len(runs)} "
                         f"({', '.join(r.name for r in runs)}): pick one with --only NAME")
    gpus = job_gpus(runs, opts)
    for run in runs:
        if gpus and not on_cpu(run):
            check_divisible(batch_sizes(run.settings), gpus * opts.nodes, run.config_file, "",
                            context=f"the job's GPUs: --nodes {opts.nodes} x --gpus {gpus}")


def _env_lines(ops: Sequence[EnvOp], verbose: bool) -> list[str]:
    """The shell that gives this process the environment of a `bdv2 train` child."""
    from bdv2.doctor import shell_lines

    # Slurm sets CUDA_VISIBLE_DEVICES to the GPUs it allocated; a cuda_visible_devices from the YAML (chosen for
    # another machine) would hide them.
    lines = shell_lines([op for op in ops if op.name != "CUDA_VISIBLE_DEVICES"])
    lines += [f"export {k}={shlex.quote(v)}" for k, v in CHILD_EXTRA.items()]
    if not verbose:  # where the user has not set them, as bdv2.console.quiet_native_logs
        lines += [f'export {k}="${{{k}-{v}}}"' for k, v in QUIET_ENV.items()]
    return lines


def _indent(lines: Sequence[str], by: str = "    ") -> list[str]:
    return [by + line if line else line for line in lines]


def _slurm_dir(save_dir: str, cwd: Path) -> Path:
    """Where the job script and the jobs' logs go: <save_dir>/slurm, or for a URL save_dir (Slurm writes its
    logs to a local or shared file system) the local side of save_dir on this machine (paths.local_shadow)."""
    if remote_scheme(save_dir) is not None:
        return local_shadow(save_dir) / SLURM_DIR
    return (cwd / save_dir / SLURM_DIR).resolve()


def _run_json(run: Run, cwd: Path) -> str:
    """The run.json a task's worker reads: a URL as it is, a local path made absolute."""
    if isinstance(run.workdir, GPath):
        return str(run.workdir / "run.json")
    return str((cwd / run.workdir / "run.json").resolve())


def job_script(exp: Experiments, doctor_ops: Sequence[EnvOp], opts: SlurmOptions, *, python: str = sys.executable,
               cwd: Path | None = None, verbose: bool = False) -> JobScript:
    """The sbatch script of ``exp``'s runs (pure: nothing written, nothing checked on disk).

    Raises:
        SlurmError, ConfigError: see `check_runs`.
    """
    runs = list(exp.runs)
    check_runs(runs, opts)
    cwd = (cwd or Path.cwd()).resolve()
    folder = _slurm_dir(runs[0].settings.save_dir, cwd)
    config = Path(runs[0].config_file)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", config.stem) or "train"
    array = len(runs) > 1
    log = str(folder / ("%x-%A_%a.out" if array else "%x-%j.out"))
    gpus = job_gpus(runs, opts)
    head = [
        "#!/bin/bash",
        f"# {len(runs)} run(s) of {config}: "
        + (f"one job-array task per run ({', '.join(r.name for r in runs)})" if array else
           f"{runs[0].name}" + (f" across {opts.nodes} nodes" if opts.nodes > 1 else "")) + ".",
        f"# Written by `bdv2 train --slurm` (bdv2 {__version__}) on {socket.gethostname()} at "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; submit with: sbatch {folder / (stem + '.sbatch')}",
        f"#SBATCH --job-name=bdv2-{stem}",
        f"#SBATCH --chdir={cwd}",
        f"#SBATCH --output={log}",
        "#SBATCH --open-mode=append",
    ]
    if array:
        head.append(f"#SBATCH --array=0-{len(runs) - 1}")
    head += [f"#SBATCH --nodes={opts.nodes}", "#SBATCH --ntasks-per-node=1",
             f"#SBATCH --cpus-per-task={opts.cpus_per_task}"]
    if gpus:
        head.append(f"#SBATCH --gres=gpu:{gpus}")
    for name, value in (("partition", opts.partition), ("time", opts.time), ("mem", opts.mem)):
        if value is not None:
            head.append(f"#SBATCH --{name}={value}")
    head += [f"#SBATCH --signal={SIGNAL}@{opts.signal_s}", "#SBATCH --requeue"]
    head += [f"#SBATCH {arg}" for arg in opts.extra]

    envs = [_env_lines(child_ops(r.settings, doctor_ops), verbose) for r in runs]
    shared = all(e == envs[0] for e in envs)
    body = [
        "",
        f"# About {opts.signal_s} s before the time limit Slurm sends SIG{SIGNAL} to the job steps (the workers; "
        "with B: it would",
        f"# reach only this shell). Each worker then saves its step and exits {PREEMPTED_EXIT}, and this script "
        "requeues the job:",
        "# it resumes from that checkpoint when it starts again.",
        "set -u",
    ]
    env_note = "# The environment `bdv2 train` gives its children: the doctor's repairs, the run's device keys."
    if array:
        body += [] if shared else [env_note]
        body.append('case "${SLURM_ARRAY_TASK_ID:-0}" in')
        for i, (run, env) in enumerate(zip(runs, envs, strict=True)):
            body.append(f"  {i})  # {run.name}")
            body += _indent([f"run_json={shlex.quote(_run_json(run, cwd))}",
                             *([] if shared else env), ";;"])
        body += ['  *) echo "bdv2: no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;', "esac"]
    else:
        body.append(f"run_json={shlex.quote(_run_json(runs[0], cwd))}")
    if shared or not array:
        body += [env_note, *envs[0]]
    body += [
        'echo "bdv2: job ${SLURM_JOB_ID} (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname): $run_json"',
        "# srun is given --cpus-per-task again: Slurm 22.05 stopped passing sbatch's value on to srun's tasks.",
        f'srun --kill-on-bad-exit=1 --cpus-per-task="${{SLURM_CPUS_PER_TASK:-1}}" {shlex.quote(python)} -P '
        '-m bdv2.trainer.worker "$run_json"',
        "rc=$?",
        f'if [ "$rc" -eq {PREEMPTED_EXIT} ]; then',
        '    echo "bdv2: stopped by a signal with its checkpoint saved; requeueing job $SLURM_JOB_ID to resume"',
        '    scontrol requeue "$SLURM_JOB_ID"',
        "fi",
        'exit "$rc"',
    ]
    return JobScript(folder / f"{stem}.sbatch", "\n".join(head + body) + "\n", tuple(r.name for r in runs), log)


def write_job(job: JobScript) -> None:
    """The script on disk (atomically; executable), its folder the jobs' log folder."""
    from bdv2.fsutil import write_atomic

    job.path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(job.path, job.text)
    job.path.chmod(0o755)


def submit(path: Path, sbatch: str = "sbatch") -> str:
    """``sbatch --parsable path``; the job id.

    Raises:
        SlurmError: sbatch not found, or refused the job (its message).
    """
    exe = shutil.which(sbatch)
    if exe is None:
        raise SlurmError(f"{sbatch} not found on PATH: submit from a Slurm login node (sbatch {path}), or run "
                         "without --submit and copy the script there")
    proc = subprocess.run([exe, "--parsable", str(path)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        said = proc.stderr.strip() or proc.stdout.strip()
        raise SlurmError(f"sbatch refused {path} (exit {proc.returncode}): {said}")
    return proc.stdout.strip().split(";")[0]


def slurm_experiments(exp: Experiments, pre: Preflight, console: Console, opts: SlurmOptions, *, resume: bool,
                      submit_job: bool, force: bool, verbose: bool = False, python: str = sys.executable) -> int:
    """`bdv2 train --slurm [--submit]`: the preflight verdict, every run folder checked (not owned by a running
    process, writable) and given its run.json, the script written and, with ``submit_job``, submitted. The exit
    code: 0 written (and submitted), 1 refused."""
    from .budget import check_storage
    from .launch import prepare_workdir
    from .report import render_preflight
    from .runlock import check

    render_preflight(pre, console)
    if pre.errors and not force:
        console.print(f"[red]preflight: {len(pre.errors)} error(s) above; no job written[/] "
                      "(fix them, or pass --force to write it anyway)")
        return 1
    try:
        job = job_script(exp, pre.env_ops, opts, python=python, verbose=verbose)
        for run in exp.runs:
            check(run.workdir)
        bad = check_storage(exp.runs)
        if bad:
            raise SlurmError(f"save_dir {bad[0]}")
        for run in exp.runs:
            prepare_workdir(run, resume)  # each task's run.json: what its worker trains
        write_job(job)
        console.print(describe(job), markup=False, highlight=False)
        if not submit_job:
            console.print(f"submit it with: sbatch {job.path}", markup=False, highlight=False)
            return 0
        job_id = submit(job.path)
    except TrainerError as e:
        console.print(f"bdv2 train: {e}", markup=False, highlight=False)
        return 1
    console.print(f"slurm: submitted job {job_id} (squeue -j {job_id} shows it)", markup=False, highlight=False)
    return 0


def describe(job: JobScript) -> str:
    """One line for the console: what was written and where the logs go."""
    what = f"{len(job.runs)} job-array tasks, one per run" if job.array else f"run {job.runs[0]}"
    return f"slurm: wrote {job.path} ({what}; logs: {job.log_pattern})"


__all__ = ["JobScript", "SlurmError", "SlurmOptions", "check_runs", "describe", "job_gpus", "job_script", "job_view",
           "slurm_experiments", "submit", "write_job"]
