"""Stopping a run the ways users and schedulers do, on real processes: Ctrl-C on `bdv2 train` (SIGINT to its
process group, as a terminal sends it), a second launch of the same config while the first runs, the same
command again to resume, the launcher killed outright (its child must stop and save, not train on
unsupervised), Ctrl-C twice, and SIGUSR1 to one of two jax.distributed workers (both save the same step).

Tiny encoder, 16 px images, CPU. The Ctrl-C scenario shares one launch (module fixture); each test checks
one promise of it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bdv2.trainer import config, process, runlock
from bdv2.trainer.failure import last_checkpoint
from bdv2.trainer.status import SUMMARY_FILE

from . import helpers

NAME = "gc_bc_kitchen"
BDV2 = [sys.executable, "-P", "-m", "bdv2.cli"]


def _env(**extra: str) -> dict[str, str]:
    # A compile time floor of 0: the tiny model's steps compile in well under jax's default floor of 1 s.
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "COLUMNS": "200", **extra}


def _yaml(tfdata: Path, root: Path, **over: Any) -> Path:
    g = helpers.base_global(tfdata, root / "runs", **{"num_steps": 400, "eval_interval": 1000,
                                                      "save_interval": 1000, "log_interval": 1,
                                                      "augment": False, **over})
    return helpers.write_yaml(root / "m.yaml", {"global": g, "matrix": {"algos": ["gc_bc"], "tasks": ["kitchen"]}})


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (/proc, Linux)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return runlock._proc_start(pid) == "Z"


def _train(yaml: Path) -> subprocess.Popen[str]:
    """`bdv2 train` in a session of its own: the test is its terminal."""
    return subprocess.Popen([*BDV2, "train", "--config", str(yaml)], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _interrupt(launcher: subprocess.Popen[str], workdir: Path, past: int) -> dict[str, Any]:
    """Ctrl-C once the run has logged a step after ``past``: SIGINT to the launcher's whole process group, as a
    terminal sends it. What the launch printed and left behind."""
    try:
        helpers.wait_for(lambda: helpers.logged_step(workdir) > past + 2, 240, f"the run to train past step {past + 2}")
        os.killpg(launcher.pid, signal.SIGINT)
        out = launcher.communicate(timeout=120)[0]
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    return {"rc": launcher.returncode, "out": out, "checkpoint": last_checkpoint(workdir),
            "summary": json.loads((workdir / SUMMARY_FILE).read_text()), "lock_after": runlock.read_owner(workdir)}


@pytest.fixture(scope="module")
def ctrl_c(tfdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Launch a long run; a second launch of the same config meanwhile; Ctrl-C; the same command again; Ctrl-C."""
    root = tmp_path_factory.mktemp("ctrl_c")
    yaml = _yaml(tfdata, root, num_steps=1_000_000)
    workdir = config.load(yaml).runs[0].workdir
    first = _train(yaml)
    try:
        helpers.wait_for(lambda: helpers.logged_step(workdir) >= 1, 240, "the first launch to train")
        owner = runlock.read_owner(workdir)
        second = subprocess.run([*BDV2, "train", "--config", str(yaml)], env=_env(), capture_output=True, text=True,
                                timeout=240)
    finally:
        stopped = _interrupt(first, workdir, 0)
    again = _interrupt(_train(yaml), workdir, stopped["summary"]["steps"])
    caches = re.findall(r"compilation cache (\S+): (\d+) program\(s\) loaded, (\d+) compiled",
                        (workdir / "train.log").read_text())
    return {"workdir": workdir, "first_pid": first.pid, "second": second, "owner": owner, "stopped": stopped,
            "again": again, "caches": caches, "root": root}


def test_ctrl_c_saves_the_current_step_and_says_how_to_resume(ctrl_c: dict[str, Any]) -> None:
    s = ctrl_c["stopped"]
    assert s["rc"] == 130, s["out"][-3000:]
    step = s["summary"]["steps"]
    assert s["summary"]["status"] == "preempted" and s["checkpoint"] == step >= 3, s["summary"]
    text = re.sub(r"\s+", " ", s["out"])
    assert f"{NAME}: preempted at step {step} by SIGINT, checkpoint saved" in text, s["out"][-3000:]
    assert "re-run the same command to resume" in text and "Aborted!" not in text
    assert "SIGINT received" in text and s["lock_after"] is None  # released on the way out


def test_a_second_launch_on_the_same_run_is_refused_naming_the_owner(ctrl_c: dict[str, Any]) -> None:
    second, owner = ctrl_c["second"], ctrl_c["owner"]
    assert second.returncode == 1, second.stdout + second.stderr
    assert owner is not None and owner.pid == ctrl_c["first_pid"] and owner.host == socket.gethostname()
    text = re.sub(r"\s+", " ", second.stdout + second.stderr)
    assert f"already being trained by pid {owner.pid} on {owner.host}" in text, text[-2000:]
    assert f"{NAME}: started" not in text and "summary" not in text  # refused before anything ran


def test_the_same_command_resumes_from_the_saved_step(ctrl_c: dict[str, Any]) -> None:
    before, again = ctrl_c["stopped"]["summary"]["steps"], ctrl_c["again"]
    assert again["rc"] == 130, again["out"][-3000:]
    assert f"resumed from step {before}" in again["summary"]["notes"]
    assert again["summary"]["steps"] == again["checkpoint"] > before + 2


def test_the_restart_loads_its_compiled_steps_from_the_cache(ctrl_c: dict[str, Any]) -> None:
    (where, loaded, compiled), (where2, loaded2, compiled2) = ctrl_c["caches"]
    assert where == where2 == str(ctrl_c["root"] / "runs" / process.CACHE_DIR)
    # The first start fills the cache (and may already reuse within itself: one program jitted twice); the
    # restart finds what the first compiled.
    assert int(compiled) > 0 and int(loaded2) > int(loaded) and int(compiled2) < int(compiled), ctrl_c["caches"]


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / runlock.LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid,
                                                          "started": "2026-01-01T00:00:00Z"}))
    with runlock.acquire(tmp_path) as lock:
        assert lock.owner.pid == os.getpid() and f"pid {dead.pid}" in lock.note and "gone" in lock.note
        assert runlock.read_owner(tmp_path) == lock.owner
        with pytest.raises(runlock.RunLockedError, match=rf"already being trained by pid {os.getpid()}"):
            runlock.acquire(tmp_path, pid=os.getppid())
    assert not (tmp_path / runlock.LOCK_FILE).exists()
    (tmp_path / runlock.LOCK_FILE).write_text(json.dumps({"host": "node-7", "pid": 1, "started": "x"}))
    with pytest.raises(runlock.RunLockedError, match=r"pid 1 on node-7 .*if nothing on node-7 trains it any more, "
                                                     r"delete"):
        runlock.acquire(tmp_path)


def test_killing_only_the_launcher_stops_its_child_with_a_checkpoint(tfdata: Path, tmp_path: Path) -> None:
    yaml = _yaml(tfdata, tmp_path)
    workdir = config.load(yaml).runs[0].workdir
    launcher = _train(yaml)
    try:
        helpers.wait_for(lambda: helpers.logged_step(workdir) >= 3, 180, "the run to train")
        children = _children(launcher.pid)
        assert len(children) == 1
        launcher.kill()  # SIGKILL: the launcher cannot forward anything
        launcher.communicate(timeout=30)
        helpers.wait_for(lambda: _gone(children[0]), 60, "the orphaned child to stop")
    finally:
        if launcher.poll() is None:
            launcher.kill()
    summary = json.loads((workdir / SUMMARY_FILE).read_text())
    assert summary["status"] == "preempted" and last_checkpoint(workdir) == summary["steps"] < 400, summary
    assert "SIGTERM received" in (workdir / "train.log").read_text()


def test_a_second_interrupt_stops_at_once() -> None:
    code = ("import os, signal, time\n"
            "from bdv2.trainer.process import install_stop_handlers\n"
            "req = install_stop_handlers()\n"
            "os.kill(os.getpid(), signal.SIGINT); time.sleep(0.2)\n"
            "print('stop requested:', req(1), flush=True)\n"
            "os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
            "print('still running')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGINT, proc.stdout + proc.stderr
    assert "stop requested: SIGINT" in proc.stdout and "still running" not in proc.stdout
    assert "second interrupt: stopping now" in proc.stderr


def test_sigusr1_on_one_host_stops_both_at_the_same_step(tfdata: Path, tmp_path: Path) -> None:
    """Two workers joined by jax.distributed (CPU); SIGUSR1 to process 1 only: the preemption sync point makes
    both stop after the same step, which is saved once (orbax, from both) and reported by both."""
    from bdv2.trainer import launch

    run = config.load(_yaml(tfdata, tmp_path, num_steps=2000)).runs[0]
    launch.prepare_workdir(run, resume=True)
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = _env(JAX_PLATFORMS="cpu", BDV2_COORDINATOR_ADDRESS=f"localhost:{port}", BDV2_NUM_PROCESSES="2")
    procs = [subprocess.Popen([sys.executable, "-P", "-m", "bdv2.trainer.worker", str(run.workdir / "run.json")],
                              env={**env, "BDV2_PROCESS_ID": str(k)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for k in range(2)]
    try:
        helpers.wait_for(lambda: helpers.logged_step(run.workdir) >= 3, 240, "the two workers to train")
        procs[1].send_signal(signal.SIGUSR1)
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [process.PREEMPTED_EXIT] * 2, "\n".join(o[-2000:] for o in outs)
    steps = [int(re.findall(r"preempted after (\d+) steps", o)[-1]) for o in outs]
    summary = json.loads((run.workdir / SUMMARY_FILE).read_text())
    assert steps[0] == steps[1] == summary["steps"] == last_checkpoint(run.workdir), (steps, summary)
    assert summary["status"] == "preempted" and "SIGUSR1 received" in outs[1]
