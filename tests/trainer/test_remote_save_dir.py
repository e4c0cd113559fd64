"""A save_dir given as a URL: every file of the run folder through bdv2.paths (tf.io.gfile), checkpoints through
orbax's etils.epath, and what stays local (the lock's mutex, the growing log and metrics, the compilation
cache) in bdv2.paths.local_shadow.

Two stand-ins for a bucket, both without a network:

- TensorFlow's in-memory file system (``ram://``), in this process: the lock object, the metrics staged and put,
  the checks before launch. orbax cannot open it (refused in one line), so no checkpoint is written there.
- ``file://`` URLs, which every process opens: a real `bdv2 train` (child processes) writes its run folder
  through the URL code path, is stopped with Ctrl-C, resumes from the saved step, and `bdv2 eval` and
  `load_policy` read the folder back through the URL. orbax is given the local path the URL names, so orbax's
  own gs:// path (epath over the same tf.io.gfile, tensorstore for the arrays) is not exercised here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bdv2 import fsutil, paths
from bdv2.trainer import config, runlock, staging
from bdv2.trainer.budget import check_storage
from bdv2.trainer.errors import ConfigError
from bdv2.trainer.metrics import METRICS_FILE, MetricWriter, read_metrics, truncate_after
from bdv2.trainer.status import SUMMARY_FILE

from . import helpers

BDV2 = [sys.executable, "-P", "-m", "bdv2.cli"]


@pytest.fixture
def local_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(paths.LOCAL_DIR_ENV, str(tmp_path / "local"))
    return tmp_path / "local"


def _ram(name: str) -> paths.GPath:
    return paths.GPath(f"ram://bdv2-{name}-{os.getpid()}-{time.monotonic_ns()}")


# ---------------------------------------------------------------------------------------- in this process

def test_the_local_side_is_one_folder_per_url_under_the_chosen_root(local_dir: Path) -> None:
    a, b = paths.local_shadow("gs://bucket/runs/r"), paths.local_shadow("gs://bucket/other/r")
    assert a == paths.local_shadow(paths.GPath("gs://bucket/runs/r/")) and a != b
    assert a.parent == b.parent == local_dir and a.name.startswith("gs-") and a.name.endswith("-r")


def test_orbax_gets_a_local_path_for_file_urls_and_epath_for_buckets(tmp_path: Path) -> None:
    from etils import epath
    from etils.epath import backend

    assert paths.orbax_path(tmp_path.as_uri() + "/r") == tmp_path / "r"
    gs = paths.orbax_path(paths.GPath("gs://bucket/runs/r/checkpoints"))
    assert isinstance(gs, epath.Path) and str(gs) == "gs://bucket/runs/r/checkpoints"
    # With TensorFlow installed, epath opens gs:// through tf.io.gfile: orbax and bdv2.paths see one store.
    assert gs._backend is backend.tf_backend  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"orbax .* cannot keep checkpoints under ram://"):
        paths.orbax_path("ram://x/checkpoints")
    assert paths.GPath("gs://b/x").object_store and not paths.GPath("ram://b/x").object_store


def test_the_lock_of_a_remote_run_folder_is_an_object_named_by_its_owner(local_dir: Path) -> None:
    workdir = _ram("lock") / "r"
    lock = runlock.acquire(workdir)
    owner = runlock.read_owner(workdir)
    assert owner is not None and owner.pid == os.getpid() and (workdir / runlock.LOCK_FILE).is_file()
    assert lock.path == workdir / runlock.LOCK_FILE
    assert list(local_dir.glob(f"*/{runlock.LOCK_FILE}.mutex"))  # this machine's side of the remote lock
    parent = os.getppid()  # a live process that is not the owner
    with pytest.raises(runlock.RunLockedError, match=f"already being trained by pid {os.getpid()}"):
        runlock.acquire(workdir, pid=parent)
    lock.release()
    assert not (workdir / runlock.LOCK_FILE).exists()
    # A lock of a process that is gone is taken over, as on a local disk.
    stale = runlock.Owner(owner.host, 2**22 + 12345, owner.started)  # above Linux's largest pid
    (workdir / runlock.LOCK_FILE).write_text(json.dumps(dataclasses.asdict(stale)))
    taken = runlock.acquire(workdir)
    assert "that process is gone" in taken.note and runlock.read_owner(workdir) == taken.owner
    taken.release()


def test_metrics_are_appended_locally_and_put_whole_at_each_sync(local_dir: Path) -> None:
    workdir = _ram("metrics") / "r"
    workdir.mkdir(parents=True)
    writer = MetricWriter(workdir, "r", {}, None)
    for step in (1, 2):
        writer.write(step, "train", {"loss": 1.0 / step})
    assert not (workdir / METRICS_FILE).exists()  # appended to the local copy only
    assert [r["step"] for r in read_metrics(staging.local_file(workdir, METRICS_FILE).parent)] == [1, 2]
    writer.sync()
    assert [r["step"] for r in read_metrics(workdir)] == [1, 2]
    writer.write(3, "train", {"loss": 0.3})
    writer.close()
    assert [r["step"] for r in read_metrics(workdir)] == [1, 2, 3]
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))  # TensorBoard writes the URL itself
    # A resume from step 2: the folder's rows are cut there, and the next writer appends after them.
    truncate_after(workdir, 2)
    writer = MetricWriter(workdir, "r", {}, None)
    writer.write(3, "train", {"loss": 0.25})
    writer.close()
    assert [(r["step"], r["loss"]) for r in read_metrics(workdir)] == [(1, 1.0), (2, 0.5), (3, 0.25)]


def test_a_remote_save_dir_is_checked_by_writing_there_and_its_free_space_is_not_asked(tfdata: Path,
                                                                                       tmp_path: Path) -> None:
    def runs(save_dir: str) -> Any:
        g = {**helpers.base_global(tfdata, tmp_path / "unused"), "save_dir": save_dir}
        return config.load(helpers.write_yaml(tmp_path / "m.yaml", {
            "global": g, "runs": [{"algo": "gc_bc", "task": "kitchen/put_carrot", "name": "r"}]})).runs

    ok = runs((tmp_path / "runs").as_uri())
    assert isinstance(ok[0].workdir, paths.GPath) and check_storage(ok) == []
    assert (tmp_path / "runs").is_dir() and not list((tmp_path / "runs").iterdir())  # the probe is gone
    with pytest.raises(ConfigError, match=r"save_dir: orbax .* cannot keep checkpoints under ram://"):
        runs("ram://bdv2-save-dir")  # TensorFlow opens it, orbax does not


def test_an_atomic_write_to_a_url_leaves_no_temporary_object() -> None:
    folder = _ram("atomic")
    fsutil.write_json_atomic(folder / "summary.json", {"status": "finished"})
    assert [p.name for p in folder.iterdir()] == ["summary.json"]
    assert json.loads((folder / "summary.json").read_text()) == {"status": "finished"}


# ------------------------------------------------------------------------- a real launch on a file:// URL

def _env(local: Path) -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "COLUMNS": "200", paths.LOCAL_DIR_ENV: str(local)}


def _staged_step(workdir: paths.GPath, local: Path) -> int:
    try:
        lines = staging.local_file(workdir, METRICS_FILE).read_text().splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError, IndexError):
        return 0


@pytest.fixture(scope="module")
def remote_run(tfdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`bdv2 train` with save_dir file:///...: Ctrl-C after a few steps, then the same command with
    num_steps a few steps past the saved one, which resumes and finishes."""
    root = tmp_path_factory.mktemp("remote")
    local = root / "local"
    save_dir = (root / "bucket" / "runs").as_uri()
    g = {**helpers.base_global(tfdata, root / "unused", num_steps=1_000_000, eval_interval=1000,
                               save_interval=1000, log_interval=1, augment=False), "save_dir": save_dir}
    yaml = helpers.write_yaml(root / "m.yaml", {"global": g, "runs": [{"algo": "gc_bc", "task": "kitchen",
                                                                      "name": "r"}]})
    env = _env(local)
    os.environ[paths.LOCAL_DIR_ENV] = str(local)  # local_file below looks where the launch stages
    try:
        workdir = config.load(yaml).runs[0].workdir
        assert isinstance(workdir, paths.GPath)
        first = subprocess.Popen([*BDV2, "train", "--config", str(yaml)], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            helpers.wait_for(lambda: _staged_step(workdir, local) >= 3, 300, "the run to train 3 steps")
            os.killpg(first.pid, signal.SIGINT)
            out1 = first.communicate(timeout=180)[0]
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        summary1 = json.loads((workdir / SUMMARY_FILE).read_text())
        saved = int(summary1["steps"])
        second = subprocess.run([*BDV2, "train", "--config", str(yaml), "--set", f"num_steps={saved + 4}"],
                                env=env, capture_output=True, text=True, timeout=600)
        return {"root": root, "local": local, "workdir": workdir, "rc1": first.returncode, "out1": out1,
                "summary1": summary1, "second": second, "saved": saved}
    finally:
        del os.environ[paths.LOCAL_DIR_ENV]


@pytest.mark.slow
def test_a_url_save_dir_is_written_stopped_and_resumed_through_the_url(remote_run: dict[str, Any],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    workdir, saved, second = remote_run["workdir"], remote_run["saved"], remote_run["second"]
    assert remote_run["rc1"] == 130, remote_run["out1"][-3000:]
    assert remote_run["summary1"]["status"] == "preempted" and saved >= 3
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    summary = json.loads((workdir / SUMMARY_FILE).read_text())
    assert summary["status"] == "finished" and summary["steps"] == saved + 4
    assert f"resumed from step {saved}" in summary["notes"]
    assert summary["checkpoint"] == str(workdir / "checkpoints" / str(saved + 4))  # named by its URL
    # The run folder holds what a local one does, written through the URL.
    for name in ("config.json", "run.json", METRICS_FILE, "train.log"):
        assert (workdir / name).is_file(), name
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    assert (workdir / "checkpoints" / str(saved)).is_dir() and (workdir / "checkpoints" / str(saved + 4)).is_dir()
    assert (workdir.parent / "learning_curves.png").is_file()
    assert not (workdir / runlock.LOCK_FILE).exists()  # released by both launches
    # Every step logged once, in order, across the stop and the resume.
    steps = [r["step"] for r in read_metrics(workdir) if r.get("split") == "train"]
    assert steps == list(range(1, saved + 5)), steps
    # The log of both starts was put into the folder; jax's cache stayed on this machine.
    log = (workdir / "train.log").read_text()
    assert f"preempted at step {saved} by SIGINT" in log and f"finished after {saved + 4} steps" in log, log[-2000:]
    monkeypatch.setenv(paths.LOCAL_DIR_ENV, str(remote_run["local"]))
    shadow = paths.local_shadow(workdir.parent)
    assert f"compilation cache {shadow / 'jax_cache'}" in log and (shadow / "jax_cache").is_dir()
    assert not any(p.name == "jax_cache" for p in workdir.parent.iterdir())


@pytest.mark.slow
def test_eval_and_load_policy_read_a_run_folder_through_its_url(remote_run: dict[str, Any], tfdata: Path) -> None:
    from bdv2.trainer.policy import load_policy

    workdir = remote_run["workdir"]
    policy = load_policy(str(workdir))
    assert policy is not None
    out = subprocess.run([*BDV2, "eval", str(workdir), "--data", str(tfdata / "kitchen"), "--trajectories", "1",
                          "--plot-trajectories", "1", "--json"], env=_env(remote_run["local"]),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    report = json.loads((workdir / "eval.json").read_text())
    step = remote_run["saved"] + 4
    assert report["run_dir"] == str(workdir) and report["checkpoint"] == str(workdir / "checkpoints" / str(step))
    assert (workdir / "eval_actions.png").read_bytes().startswith(b"\x89PNG")
