"""The launcher: the environment given to each child, a failed run diagnosed in the summary, --fail-fast,
and one real child process end to end."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bdv2.doctor import EnvOp, EnvOpKind
from bdv2.trainer import childenv, config, launch, model

from . import helpers

FAKE_WORKER = """#!/bin/sh
# Stands in for `python [-P] -m bdv2.trainer.worker RUN_JSON`: records its environment, fails for runs named *bad*.
for run_json; do :; done  # the last argument, whatever interpreter flags come before it
dir=$(dirname "$run_json")
env > "$dir/env.txt"
case "$dir" in
  *bad*) echo "Traceback (most recent call last):"
         echo "AttributeError: module 'ml_dtypes' has no attribute 'float8_e3m4'"; exit 1 ;;
esac
echo '{"status": "finished", "steps": 20, "train_loss": 1.5, "val_loss": 1.7, "checkpoint": "ck/20"}' \
  > "$dir/summary.json"
"""


def _fake_python(tmp_path: Path) -> str:
    p = tmp_path / "fake-python"
    p.write_text(FAKE_WORKER)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def _exp(tfdata: Path, tmp_path: Path, runs: list[dict[str, Any]], **over: Any) -> model.Experiments:
    data = {"global": helpers.base_global(tfdata, tmp_path / "runs", **over), "runs": runs}
    return config.load(helpers.write_yaml(tmp_path / "m.yaml", data))


def _settings(**kw: Any) -> config.Settings:
    return config.Settings(data_root="d", save_dir="s", **kw)


DOCTOR_OPS = (EnvOp(EnvOpKind.PREPEND, "LD_LIBRARY_PATH", "/site/nvidia/cudnn/lib"),
              EnvOp(EnvOpKind.REMOVE, "LD_LIBRARY_PATH", "/usr/local/cuda-11/lib64"),
              EnvOp(EnvOpKind.SET, "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=1"))
ENVIRON = {"LD_LIBRARY_PATH": "/usr/local/cuda-11/lib64:/opt/lib", "XLA_FLAGS": "--xla_dump_to=/tmp/d",
           "JAX_PLATFORM_NAME": "gpu", "HOME": "/home/u"}


def test_child_env_carries_doctor_repairs_and_yaml_keys() -> None:
    s = _settings(cuda_visible_devices="1,2", xla_flags="--xla_gpu_autotune_level=0", jax_platform_name="gpu")
    env = childenv.child_env(s, ENVIRON, DOCTOR_OPS)
    assert env["LD_LIBRARY_PATH"] == "/site/nvidia/cudnn/lib:/opt/lib"  # the doctor's prepend and removal
    assert env["XLA_FLAGS"].split() == ["--xla_dump_to=/tmp/d", "--xla_gpu_force_compilation_parallelism=1",
                                        "--xla_gpu_autotune_level=0"]  # merged, the user's own flag kept
    assert env["CUDA_VISIBLE_DEVICES"] == "1,2" and env["JAX_PLATFORMS"] == "cuda"
    assert "JAX_PLATFORM_NAME" not in env and env["HOME"] == "/home/u"
    assert ENVIRON["LD_LIBRARY_PATH"] == "/usr/local/cuda-11/lib64:/opt/lib"  # the parent's env is untouched


def test_use_pip_cuda_libs_false_drops_only_the_injection() -> None:
    env = childenv.child_env(_settings(use_pip_cuda_libs=False), ENVIRON, DOCTOR_OPS)
    assert env["LD_LIBRARY_PATH"] == "/opt/lib"  # the harmful entry still goes; nothing is injected
    assert "CUDA_VISIBLE_DEVICES" not in env and "JAX_PLATFORMS" not in env


def test_failed_run_is_diagnosed_and_others_go_on(tfdata: Path, tmp_path: Path) -> None:
    exp = _exp(tfdata, tmp_path, [{"algo": "bc", "task": "sink", "name": "bad_run"},
                                  {"algo": "gc_bc", "task": "sink", "name": "good_run"}],
               cuda_visible_devices="", xla_flags="--xla_force_host_platform_device_count=2")
    pre = model.Preflight(env_ops=DOCTOR_OPS[:1])
    out = io.StringIO()
    console = Console(file=out, width=200)
    outcomes = launch.launch(exp, pre, console=console, python=_fake_python(tmp_path), environ=ENVIRON)
    assert [o.status for o in outcomes] == ["failed", "finished"]
    assert outcomes[1].steps == 20 and outcomes[1].val_loss == 1.7
    assert "sig-tensorstore-float8-e3m4" in [f.id for f in outcomes[0].diagnosis]
    launch.render_summary(outcomes, console)
    text = out.getvalue()
    assert "ml-dtypes is older than 0.5.0" in text and "fix:" in text and "good_run" in text
    env = dict(line.split("=", 1) for line in (tmp_path / "runs/good_run/env.txt").read_text().splitlines()
               if "=" in line)
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["JAX_PLATFORMS"] == "cpu"
    assert env["LD_LIBRARY_PATH"].startswith("/site/nvidia/cudnn/lib:")
    assert "--xla_force_host_platform_device_count=2" in env["XLA_FLAGS"]


def test_fail_fast_skips_the_rest(tfdata: Path, tmp_path: Path) -> None:
    exp = _exp(tfdata, tmp_path, [{"algo": "bc", "task": "sink", "name": "bad_one"},
                                  {"algo": "bc", "task": "kitchen", "name": "next"}])
    outcomes = launch.launch(exp, model.Preflight(), fail_fast=True, python=_fake_python(tmp_path),
                             console=Console(file=io.StringIO()))
    assert [o.status for o in outcomes] == ["failed", "skipped"]


def test_real_child_process_trains(tfdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = _exp(tfdata, tmp_path, [{"algo": "gc_bc", "task": "sink"}], num_steps=6, log_interval=3,
               eval_interval=6, save_interval=6)
    [outcome] = launch.launch(exp, model.Preflight(), console=Console(file=io.StringIO()))
    assert outcome.status == "finished", Path(outcome.log).read_text()[-2000:]
    assert outcome.steps == 6 and outcome.checkpoint.endswith("/6") and outcome.train_loss is not None
    assert "step 6/6" in Path(outcome.log).read_text()
    # the same config launched again: the finished run is not started again, its record is kept
    summary = Path(outcome.log).parent / "summary.json"
    recorded, log_before = summary.read_bytes(), Path(outcome.log).read_bytes()
    started: list[Any] = []
    monkeypatch.setattr(launch, "_start", lambda *a: started.append(a))
    out = io.StringIO()
    [again] = launch.launch(exp, model.Preflight(), console=Console(file=out, width=400))
    assert started == [] and "gc_bc_sink: already finished (6 steps), not started again" in out.getvalue()
    assert again.status == "finished" and again.steps == 6 and again.checkpoint == outcome.checkpoint
    assert again.wall_s == json.loads(recorded)["wall_s"] > 0  # the recorded training time, not this launch's
    assert summary.read_bytes() == recorded and Path(outcome.log).read_bytes() == log_before
    assert "finished by an earlier launch: not started again" in again.notes[0]


SLOW_FAKE_WORKER = """#!/bin/sh
# A fake worker that takes a while: writes when it started and ended and which GPUs it was given.
for run_json; do :; done  # the last argument: run.json
dir=$(dirname "$run_json")
echo "start $(date +%s.%N)" > "$dir/times.txt"
echo "gpus ${CUDA_VISIBLE_DEVICES-unset}" >> "$dir/times.txt"
sleep 2
echo '{"status": "finished", "steps": 20, "train_loss": 1.5, "val_loss": 1.7, "checkpoint": "ck/20"}' \\
  > "$dir/summary.json"
echo "end $(date +%s.%N)" >> "$dir/times.txt"
"""


def test_parallel_runs_one_per_gpu_and_the_third_waits(tfdata: Path, tmp_path: Path) -> None:
    """--parallel with cuda_visible_devices "0,1": two runs at a time, each child sees exactly one GPU, and the
    third run starts only once one of the first two has ended."""
    exp = _exp(tfdata, tmp_path, [{"algo": "bc", "task": "sink", "name": f"r{i}"} for i in range(3)],
               cuda_visible_devices="0,1", jax_platform_name=None)
    fake = tmp_path / "slow-python"
    fake.write_text(SLOW_FAKE_WORKER)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    outcomes = launch.launch(exp, model.Preflight(), parallel=True, python=str(fake), environ=ENVIRON,
                             console=Console(file=io.StringIO()))
    assert [o.status for o in outcomes] == ["finished"] * 3
    runs = {}
    for i in range(3):
        fields = dict(line.split(" ", 1) for line in (tmp_path / f"runs/r{i}/times.txt").read_text().splitlines())
        runs[i] = (float(fields["start"]), float(fields["end"]), fields["gpus"])
    assert sorted(gpus for _, _, gpus in runs.values()) == ["0", "0", "1"]  # one id each, never "0,1"
    (s0, e0, g0), (s1, e1, g1), (s2, _, g2) = runs[0], runs[1], runs[2]
    assert g0 != g1 and max(s0, s1) < min(e0, e1)  # the first two overlap, on different GPUs
    assert s2 >= min(e0, e1) and g2 in ("0", "1")  # the third waited for a free GPU


def test_cpu_parallel_runs_share_the_cpu_without_a_gpu(tfdata: Path, tmp_path: Path) -> None:
    """cpu_parallel=2 (the demo): two CPU runs at a time, the third waits, and no child is handed a GPU id."""
    exp = _exp(tfdata, tmp_path, [{"algo": "bc", "task": "sink", "name": f"c{i}"} for i in range(3)])
    fake = tmp_path / "slow-python"
    fake.write_text(SLOW_FAKE_WORKER)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    outcomes = launch.launch(exp, model.Preflight(), python=str(fake), environ={"HOME": "/home/u"},
                             console=Console(file=io.StringIO()), cpu_parallel=2)
    assert [o.status for o in outcomes] == ["finished"] * 3
    runs = [dict(line.split(" ", 1) for line in (tmp_path / f"runs/c{i}/times.txt").read_text().splitlines())
            for i in range(3)]
    assert all(not r["gpus"].startswith(launch.CPU_SLOT) for r in runs), runs
    (s0, e0), (s1, e1), (s2, _) = ((float(r["start"]), float(r.get("end", "inf"))) for r in runs)
    assert max(s0, s1) < min(e0, e1) and s2 >= min(e0, e1)


def test_without_parallel_runs_go_one_after_another(tfdata: Path, tmp_path: Path) -> None:
    exp = _exp(tfdata, tmp_path, [{"algo": "bc", "task": "sink", "name": f"s{i}"} for i in range(2)],
               cuda_visible_devices="0,1", jax_platform_name=None)
    fake = tmp_path / "slow-python"
    fake.write_text(SLOW_FAKE_WORKER.replace("sleep 2", "sleep 1"))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    launch.launch(exp, model.Preflight(), python=str(fake), environ=ENVIRON, console=Console(file=io.StringIO()))
    times = [dict(line.split(" ", 1) for line in (tmp_path / f"runs/s{i}/times.txt").read_text().splitlines())
             for i in range(2)]
    assert float(times[1]["start"]) >= float(times[0]["end"])
    assert [t["gpus"] for t in times] == ["0,1", "0,1"]  # each run gets both GPUs, one run at a time
