"""`bdv2 train --slurm`: the job script's content and what it does when bash runs it (srun and scontrol replaced
by recorders, so it runs anywhere), the options as a user gives them, a requeued job's lock, and a real
one-node Slurm cluster (slurm_cluster.py; skipped with the reason where slurm-wlm and munge are not installed
or this is not root): a tiny training job submitted, stopped by SIGUSR1 as the time limit does it (it requeues
itself), preempted with `scontrol requeue`, and finished from its checkpoints."""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bdv2.doctor import EnvOp, EnvOpKind
from bdv2.trainer import config, runlock, slurm
from bdv2.trainer.childenv import child_env
from bdv2.trainer.errors import ConfigError
from bdv2.trainer.model import Experiments
from bdv2.trainer.process import PREEMPTED_EXIT
from bdv2.trainer.status import SUMMARY_FILE

from . import helpers, slurm_cluster

BDV2 = [sys.executable, "-P", "-m", "bdv2.cli"]
DOCTOR_OPS = (EnvOp(EnvOpKind.PREPEND, "LD_LIBRARY_PATH", "/venv/lib/nvidia/cudnn/lib"),
              EnvOp(EnvOpKind.SET, "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=1"),
              EnvOp(EnvOpKind.UNSET, "TF_FORCE_GPU_ALLOW_GROWTH"))
"""A repair plan's environment edits, as the doctor writes them (pip CUDA libraries first, an XLA flag)."""


def _two_runs(tfdata: Path, root: Path) -> Path:
    """Two runs whose environments differ (the second forces two host devices)."""
    return helpers.write_yaml(root / "two runs.yaml", {
        "global": helpers.base_global(tfdata, root / "runs"),
        "runs": [{"algo": "gc_bc", "task": "kitchen/put_carrot", "name": "a"},
                 {"algo": "bc", "task": "kitchen/put_carrot", "name": "b",
                  "config_overrides": {"xla_flags": "--xla_force_host_platform_device_count=2"}}]})


def _script_text(tfdata: Path, root: Path, **opts: Any) -> tuple[Experiments, slurm.JobScript]:
    exp = config.load(_two_runs(tfdata, root))
    return exp, slurm.job_script(exp, DOCTOR_OPS, slurm.SlurmOptions(**opts), python="/venv/bin/python", cwd=root)


def test_one_array_task_per_run_with_the_signal_for_the_workers_and_requeue(tfdata: Path, tmp_path: Path) -> None:
    exp, job = _script_text(tfdata, tmp_path, partition="gpu", time="2-00:00:00", mem="64G",
                            extra=("--account=lab",))
    lines = job.text.splitlines()
    assert lines[0] == "#!/bin/bash" and job.path == tmp_path / "runs" / "slurm" / "two_runs.sbatch"
    sbatch = [x for x in lines if x.startswith("#SBATCH ")]
    assert sbatch == [
        "#SBATCH --job-name=bdv2-two_runs", f"#SBATCH --chdir={tmp_path}",
        f"#SBATCH --output={tmp_path}/runs/slurm/%x-%A_%a.out", "#SBATCH --open-mode=append",
        "#SBATCH --array=0-1", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1", "#SBATCH --cpus-per-task=8",
        "#SBATCH --partition=gpu", "#SBATCH --time=2-00:00:00", "#SBATCH --mem=64G",
        # no "B:": the signal goes to the job steps (the workers), not to the batch shell
        "#SBATCH --signal=USR1@120", "#SBATCH --requeue", "#SBATCH --account=lab"]  # CPU runs: no --gres
    srun = next(x for x in lines if x.startswith("srun "))
    assert srun.endswith('/venv/bin/python -P -m bdv2.trainer.worker "$run_json"')
    for i, run in enumerate(exp.runs):
        assert f"  {i})  # {run.name}" in lines and f"    run_json={run.workdir / 'run.json'}" in lines
    assert "CUDA_VISIBLE_DEVICES" not in job.text  # Slurm sets it to the GPUs it allocated
    assert slurm.describe(job).startswith(f"slurm: wrote {job.path} (2 job-array tasks, one per run; logs: ")


def _recorders(folder: Path) -> Path:
    """srun and scontrol that record their arguments and environment; srun exits with $RECORDED_RC."""
    folder.mkdir()
    (folder / "srun").write_text('#!/bin/bash\nprintf "%s\\n" "$@" > "$RECORD/srun.args"\n'
                                 'env -0 > "$RECORD/srun.env"\nexit "${RECORDED_RC:-0}"\n')
    (folder / "scontrol").write_text('#!/bin/bash\nprintf "%s\\n" "$@" >> "$RECORD/scontrol.args"\n')
    for name in ("srun", "scontrol"):
        (folder / name).chmod(0o755)
    return folder


@pytest.mark.parametrize("task", [0, 1])
def test_each_task_runs_its_worker_in_the_environment_bdv2_train_gives_its_child(tfdata: Path, tmp_path: Path,
                                                                                 task: int) -> None:
    exp, job = _script_text(tfdata, tmp_path)
    job.path.parent.mkdir(parents=True)
    slurm.write_job(job)
    record = tmp_path / "record"
    record.mkdir()
    bin_dir = _recorders(tmp_path / "bin")
    shell = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "RECORD": str(record),
             "SLURM_ARRAY_TASK_ID": str(task), "SLURM_JOB_ID": "77", "SLURM_CPUS_PER_TASK": "2",
             "LD_LIBRARY_PATH": "/opt/lib", "XLA_FLAGS": "--xla_dump_to=/tmp/x", "TF_FORCE_GPU_ALLOW_GROWTH": "true",
             "TF_CPP_MIN_LOG_LEVEL": "0", "CUDA_VISIBLE_DEVICES": "3"}
    out = subprocess.run(["bash", str(job.path)], env=shell, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    args = (record / "srun.args").read_text().splitlines()
    assert args == ["--kill-on-bad-exit=1", "--cpus-per-task=2", "/venv/bin/python", "-P", "-m",
                    "bdv2.trainer.worker", str(exp.runs[task].workdir / "run.json")]
    got = dict(x.split("=", 1) for x in (record / "srun.env").read_text().split("\0") if x)
    want = child_env(exp.runs[task].settings, shell, DOCTOR_OPS)
    want["CUDA_VISIBLE_DEVICES"] = shell["CUDA_VISIBLE_DEVICES"]  # Slurm's, untouched
    keys = {"LD_LIBRARY_PATH", "XLA_FLAGS", "TF_FORCE_GPU_ALLOW_GROWTH", "JAX_PLATFORMS", "JAX_PLATFORM_NAME",
            "PYTHONUNBUFFERED", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "CUDA_VISIBLE_DEVICES"}
    assert {k: got.get(k) for k in keys} == {k: want.get(k) for k in keys}
    assert got["LD_LIBRARY_PATH"] == "/venv/lib/nvidia/cudnn/lib:/opt/lib" and "TF_FORCE_GPU_ALLOW_GROWTH" not in got
    assert not (record / "scontrol.args").exists()  # finished: nothing to requeue


def test_a_worker_stopped_by_the_signal_requeues_its_job(tfdata: Path, tmp_path: Path) -> None:
    _, job = _script_text(tfdata, tmp_path)
    job.path.parent.mkdir(parents=True)
    slurm.write_job(job)
    record = tmp_path / "record"
    record.mkdir()
    shell = {"PATH": f"{_recorders(tmp_path / 'bin')}:/usr/bin:/bin", "RECORD": str(record),
             "SLURM_JOB_ID": "78", "RECORDED_RC": str(PREEMPTED_EXIT)}
    out = subprocess.run(["bash", str(job.path)], env=shell, capture_output=True, text=True, timeout=60)
    assert out.returncode == PREEMPTED_EXIT
    assert (record / "scontrol.args").read_text().splitlines() == ["requeue", "78"]
    assert "requeueing job 78 to resume" in out.stdout


def test_several_nodes_train_one_run_whose_batch_splits_over_every_gpu(tfdata: Path, tmp_path: Path) -> None:
    exp = config.load(_two_runs(tfdata, tmp_path))
    with pytest.raises(slurm.SlurmError, match=r"--nodes 2 trains one run across the nodes, and the config has 2 "
                                               r"\(a, b\): pick one with --only NAME"):
        slurm.job_script(exp, (), slurm.SlurmOptions(nodes=2))
    on_gpus = helpers.base_global(tfdata, tmp_path / "runs", cuda_visible_devices="0,1,2,3")
    del on_gpus["jax_platform_name"]
    gpu = helpers.write_yaml(tmp_path / "gpu.yaml", {
        "global": on_gpus,
        "runs": [{"algo": "gc_bc", "task": "kitchen/put_carrot", "name": "big"}]})
    one = config.load(gpu)
    job = slurm.job_script(one, (), slurm.SlurmOptions(nodes=2), cwd=tmp_path)
    sbatch = [x for x in job.text.splitlines() if x.startswith("#SBATCH ")]
    assert "#SBATCH --nodes=2" in sbatch and "#SBATCH --gres=gpu:4" in sbatch  # cuda_visible_devices: 4 GPUs
    assert not any("--array" in x for x in sbatch) and f"#SBATCH --output={tmp_path}/runs/slurm/%x-%j.out" in sbatch
    with pytest.raises(ConfigError, match=r"train_batch_size.*12.*--nodes 3 x --gpus 4"):
        slurm.job_script(one, (), slurm.SlurmOptions(nodes=3))


def test_a_lock_left_by_an_earlier_start_of_the_same_slurm_job_is_taken_over(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    killed = {"host": "node-7", "pid": 4242, "started": "x", "slurm_job": "901", "slurm_restart": 0}
    (tmp_path / runlock.LOCK_FILE).write_text(json.dumps(killed))
    monkeypatch.setenv("SLURM_JOB_ID", "901")
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    with pytest.raises(runlock.RunLockedError, match="pid 4242 on node-7"):  # the same start: not ours to take
        runlock.acquire(tmp_path)
    monkeypatch.setenv("SLURM_JOB_ID", "902")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    with pytest.raises(runlock.RunLockedError):  # another job
        runlock.acquire(tmp_path)
    monkeypatch.setenv("SLURM_JOB_ID", "901")
    runlock.check(tmp_path)
    with runlock.acquire(tmp_path) as lock:
        assert "an earlier start of Slurm job 901, which was requeued" in lock.note
        assert lock.owner.host == socket.gethostname() and lock.owner.slurm_restart == 1


def _bdv2(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BDV2, "train", *args], capture_output=True, text=True, timeout=timeout,
                          env={**(env or os.environ), "COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_the_command_writes_the_script_and_gives_each_run_its_run_json(tfdata: Path, tmp_path: Path) -> None:
    yaml = _two_runs(tfdata, tmp_path)
    no_sbatch = {**os.environ, "PATH": str(tmp_path / "empty")}
    out = _bdv2(str(yaml), "--slurm", "--time", "1:00:00", "--skip-data-check", "--submit", env=no_sbatch)
    text = out.stdout + out.stderr
    script = tmp_path / "runs" / "slurm" / "two_runs.sbatch"
    assert out.returncode == 1 and f"slurm: wrote {script}" in text, text
    assert "sbatch not found on PATH: submit from a Slurm login node" in text
    assert "#SBATCH --time=1:00:00" in script.read_text() and os.access(script, os.X_OK)
    assert json.loads((tmp_path / "runs" / "b" / "run.json").read_text())["name"] == "b"
    refused = _bdv2(str(yaml), "--partition", "gpu", "--submit")
    assert refused.returncode == 2 and "--submit, --partition: only with --slurm" in refused.stderr
    bad = _bdv2(str(yaml), "--slurm", "--time", "1 day")
    assert bad.returncode == 2 and "--time '1 day': one word without spaces" in bad.stderr


# ----------------------------------------------------------------------------------------- a real Slurm

@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[slurm_cluster.Cluster]:
    # Runs wherever slurm-wlm and munge are installed and the tests run as root (slurm_cluster.start says why
    # not, and the test skips with that); BDV2_SLURM_TEST=0 skips it on purpose.
    if os.environ.get("BDV2_SLURM_TEST") == "0":
        pytest.skip("BDV2_SLURM_TEST=0: the real-Slurm test is skipped on request")
    started = slurm_cluster.start(tmp_path_factory.mktemp("slurm"))
    if isinstance(started, str):
        pytest.skip(started)
    yield started
    started.stop()


def _wait(cond: Callable[[], bool], timeout: float, what: str, cluster: slurm_cluster.Cluster, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            text = log.read_text(errors="replace")[-4000:] if log.exists() else "(no job log)"
            pytest.fail(f"{what}: not within {timeout:.0f} s\n{text}\n{cluster.describe(cluster.job)}\n"
                        f"{cluster.logs()}")
        time.sleep(0.5)


def _restart_now(cluster: slurm_cluster.Cluster, job: str, log: Path, seen: list[str]) -> None:
    """Once the requeued job is pending, let it start soon, and see that it does.

    Slurm 22.05 gives a requeued batch job a BeginTime 121 s after the requeue (reason "BeginTime", measured
    here): until then the node's slurmd still refuses the job's id, its credential revoked when the previous
    start was killed, at one-second resolution. A start in the same second as that kill is refused ("Killing
    non-startable batch JobId=1: Job credential revoked" in slurmctld's log, "Job 1 already killed, do not
    launch batch job" in slurmd's) and the job leaves the queue for good. So the BeginTime is lifted
    (`StartTime=now`) only 2 s after the job is seen pending, and again while that reason stays. A job held
    after a failed launch is released; a node that went down or drained (a worker that outlived KillWait:
    "Kill task failed"), or a job that left the queue instead of starting, fails the test at once with
    Slurm's record. Every pending reason met is recorded in ``seen``.
    """
    _wait(lambda: cluster.state(job).startswith("PENDING"), 180, "the job pending again", cluster, log)
    time.sleep(2)  # past the second in which the previous start was killed
    deadline = time.monotonic() + 120
    while (state := cluster.state(job)).startswith("PENDING"):
        reason = state.partition(" ")[2]
        if reason not in seen:
            seen.append(reason)
        node = cluster.node_state()
        if node.startswith(("drain", "down", "fail")):
            pytest.fail(f"the node is {node} while job {job} waits ({reason})\n{cluster.describe(job)}\n"
                        f"{cluster.logs()}")
        if reason == "BeginTime":
            cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)
        elif "held" in reason.lower():
            cluster.run("scontrol", "release", job, check=False)
        if time.monotonic() > deadline:
            pytest.fail(f"the requeued job {job} still pending ({reason}) 120 s after it was let start\n"
                        f"{cluster.describe(job)}\n{cluster.logs()}")
        time.sleep(1)
    if not state:
        pytest.fail(f"the requeued job {job} left the queue instead of starting again\n{cluster.describe(job)}\n"
                    f"{cluster.logs()}")


@pytest.mark.slow
def test_a_submitted_job_saves_requeues_and_resumes_until_it_finishes(tfdata: Path, tmp_path: Path,
                                                                      cluster: slurm_cluster.Cluster) -> None:
    yaml = helpers.write_yaml(tmp_path / "m.yaml", {
        "global": helpers.base_global(tfdata, tmp_path / "runs", num_steps=400, eval_interval=1000,
                                      save_interval=1000, log_interval=1, augment=False),
        "matrix": {"algos": ["gc_bc"], "tasks": ["kitchen"]}})
    out = _bdv2(str(yaml), "--slurm", "--submit", "--cpus-per-task", "1", "--time", "30:00", env=cluster.env)
    assert out.returncode == 0, out.stdout + out.stderr
    job = re.search(r"slurm: submitted job (\d+)", out.stdout).group(1)  # type: ignore[union-attr]
    workdir = tmp_path / "runs" / "gc_bc_kitchen"
    log = tmp_path / "runs" / "slurm" / f"bdv2-m-{job}.out"

    # What the time limit does (--signal=USR1@120): SIGUSR1 to the job's steps. The worker saves and exits 75,
    # and the script requeues the job.
    cluster.job = job
    seen: list[str] = []
    _wait(lambda: helpers.logged_step(workdir) >= 5, 600, "training started", cluster, log)
    cluster.run("scancel", "--signal=USR1", job)
    _restart_now(cluster, job, log, seen)
    first = re.search(r"preempted at step (\d+) by SIGUSR1, checkpoint saved", log.read_text())
    assert first is not None and "requeueing job" in log.read_text(), log.read_text()
    saved = int(first.group(1))

    # A preemption: the job is requeued by the scheduler (SIGTERM to its steps, then started again).
    _wait(lambda: "(restart 1)" in log.read_text() and helpers.logged_step(workdir) > saved + 5, 600,
          "the requeued job training again", cluster, log)
    cluster.run("scontrol", "requeue", job)
    _restart_now(cluster, job, log, seen)
    second = re.search(r"preempted at step (\d+) by SIGTERM, checkpoint saved", log.read_text())
    assert second is not None, log.read_text()
    _wait(lambda: cluster.state(job) == "", 900, "the job finished", cluster, log)

    text = log.read_text()
    assert "(restart 2)" in text and "finished after 400 steps" in text, text
    summary = json.loads((workdir / SUMMARY_FILE).read_text())
    assert summary["status"] == "finished" and summary["steps"] == 400
    assert f"resumed from step {second.group(1)}" in summary["notes"]
    rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r.get("split") == "train"]
    # Each start went on from the step its predecessor saved: every step logged once, in order.
    assert steps[0] == 1 and steps[-1] == 400 and all(b > a for a, b in itertools.pairwise(steps)), steps
    print(f"requeued job {job}: pending reasons met {seen}")  # shown with -rA or -s
