"""Failures named by the launcher: a child killed by a signal (its name, its usual causes, the step the next
launch resumes from), a run finished before its process was killed, and bdv2's own errors raised in a child
shown as themselves (error.json) rather than guessed from the log."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bdv2.trainer import config, failure, launch, model
from bdv2.trainer.metrics import read_metrics

from . import helpers


def _exp(tfdata: Path, tmp_path: Path, runs: list[dict[str, Any]], devices: int | None = None,
         **over: Any) -> model.Experiments:
    data = {"global": helpers.base_global(tfdata, tmp_path / "runs", **over), "runs": runs}
    return config.load(helpers.write_yaml(tmp_path / "m.yaml", data), devices=devices)


def _summary_text(outcomes: list[model.Outcome]) -> str:
    out = io.StringIO()
    launch.render_summary(outcomes, Console(file=out, width=400, soft_wrap=True))
    return out.getvalue()


def _kill_when(procs: list[subprocess.Popen[bytes]], workdir: Path, sig: signal.Signals) -> threading.Thread:
    """Kill the child with ``sig`` once it has saved a checkpoint and logged a step past it."""
    def watch() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            step = failure.last_checkpoint(workdir)
            logged = [r["step"] for r in read_metrics(workdir) if r.get("split") == "train"]
            if procs and step is not None and logged and logged[-1] > step:
                os.kill(procs[0].pid, sig)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _recording_start(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []
    real = launch._start

    def start(*args: Any) -> Any:
        proc, log = real(*args)
        procs.append(proc)
        return proc, log

    monkeypatch.setattr(launch, "_start", start)
    return procs


def test_sigkill_mid_run_is_named_and_the_next_launch_resumes(tfdata: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [{"algo": "bc", "task": "sink", "name": "killed_run"}]
    exp = _exp(tfdata, tmp_path, runs, num_steps=100_000, log_interval=2, save_interval=4, eval_interval=100_000)
    procs = _recording_start(monkeypatch)
    workdir = tmp_path / "runs" / "killed_run"
    watcher = _kill_when(procs, workdir, signal.SIGKILL)
    [outcome] = launch.launch(exp, model.Preflight(), console=Console(file=io.StringIO()))
    watcher.join()
    step = failure.last_checkpoint(workdir)
    assert outcome.status == "failed" and step is not None
    assert outcome.checkpoint == str(workdir / "checkpoints" / str(step))  # in the table: where it resumes
    assert outcome.failure is not None and outcome.failure.title == "killed by SIGKILL (signal 9)"
    text = _summary_text([outcome])
    assert "out-of-memory killer" in text and "dmesg" in text
    assert f"resumes it from step {step} (its last checkpoint" in text
    assert "no known cause" not in text and "bug report" not in text
    log = Path(outcome.log).read_text()
    # TensorFlow's start-up lines are gone (bdv2.console.quiet_native_logs in child_env); a runtime grappler
    # warning can still print absl's pre-init line, so only the start-up notices are checked here.
    assert not [n for n in ("oneDNN", "cpu_feature_guard") if n in log], log[:2000]

    monkeypatch.undo()
    again = _exp(tfdata, tmp_path, runs, num_steps=step + 2, log_interval=2, save_interval=4, eval_interval=100_000)
    [second] = launch.launch(again, model.Preflight(), console=Console(file=io.StringIO()))
    assert second.status == "finished", Path(second.log).read_text()[-2000:]
    assert f"resumed from step {step}" in second.notes and second.steps == step + 2


FAKE = """#!/bin/sh
for run_json; do :; done
dir=$(dirname "$run_json")
{body}
"""


def _fake(tmp_path: Path, body: str) -> str:
    p = tmp_path / "fake-python"
    p.write_text(FAKE.format(body=body))
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


@pytest.mark.parametrize(("sig", "cause"), [(signal.SIGTERM, "preempted"), (signal.SIGINT, "interrupted")])
def test_sigterm_and_sigint_are_named(tfdata: Path, tmp_path: Path, sig: signal.Signals, cause: str) -> None:
    exp = _exp(tfdata, tmp_path, [{"algo": "bc", "task": "sink", "name": "r"}])
    (tmp_path / "runs/r/checkpoints/8").mkdir(parents=True)
    (tmp_path / "runs/r/checkpoints/4").mkdir()
    # exec: the shell becomes python, which dies by the signal (a shell would exit with 128 + n instead)
    python = _fake(tmp_path, f"exec python3 -c 'import os, signal; os.kill(os.getpid(), signal.{sig.name})'")
    [outcome] = launch.launch(exp, model.Preflight(), python=python, console=Console(file=io.StringIO()))
    assert outcome.failure is not None and outcome.failure.title == f"killed by {sig.name} (signal {sig.value})"
    text = _summary_text([outcome])
    assert cause in text and "resumes it from step 8" in text and f"bdv2 train --config {tmp_path / 'm.yaml'}" in text


def test_finished_run_killed_afterwards_is_finished(tfdata: Path, tmp_path: Path) -> None:
    exp = _exp(tfdata, tmp_path, [{"algo": "bc", "task": "sink", "name": "done"}])
    python = _fake(tmp_path, """echo '{"status": "finished", "steps": 20, "checkpoint": "ck/20"}' > "$dir/summary.json"
exec python3 -c 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'""")
    [outcome] = launch.launch(exp, model.Preflight(), python=python, console=Console(file=io.StringIO()))
    assert outcome.status == "finished" and outcome.steps == 20
    assert any("SIGKILL" in n for n in outcome.notes)


def test_stale_summary_of_an_earlier_launch_is_not_this_ones(tfdata: Path, tmp_path: Path) -> None:
    exp = _exp(tfdata, tmp_path, [{"algo": "bc", "task": "sink", "name": "old"}])
    workdir = tmp_path / "runs/old"
    workdir.mkdir(parents=True)
    (workdir / "summary.json").write_text('{"status": "finished", "steps": 20}')
    os.utime(workdir / "summary.json", (time.time() - 100, time.time() - 100))
    python = _fake(tmp_path, "exec python3 -c 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'")
    [outcome] = launch.launch(exp, model.Preflight(), python=python, console=Console(file=io.StringIO()))
    assert outcome.status == "failed" and outcome.failure is not None and "SIGKILL" in outcome.failure.title


def test_config_error_in_the_child_is_shown_as_itself(tfdata: Path, tmp_path: Path) -> None:
    """The batch (8) does not split over the 3 host devices XLA_FLAGS forces in the run's settings; the config
    is expanded for 1 device, so only the child finds out (loop.check_batch_sizes) and writes error.json."""
    exp = _exp(tfdata, tmp_path, [{"algo": "bc", "task": "sink", "name": "forced"}], devices=1,
               xla_flags="--xla_force_host_platform_device_count=3", num_steps=4)
    [outcome] = launch.launch(exp, model.Preflight(), console=Console(file=io.StringIO()))
    assert outcome.status == "failed" and outcome.failure is not None, Path(outcome.log).read_text()[-2000:]
    assert outcome.failure.kind is failure.FailureKind.BDV2_ERROR and not outcome.diagnosis
    text = _summary_text([outcome])
    assert "ConfigError: " in text and "is not divisible by the 3 device(s)" in text
    assert "fix: use a batch that is a multiple of 3" in text
    assert "no known cause" not in text and "bug report" not in text


def test_data_error_in_the_child_is_shown_as_itself(tfdata: Path, tmp_path: Path) -> None:
    """metadata.json is damaged after the config was checked: the child's DataError, message and fix, is what
    the summary shows."""
    import shutil

    data = Path(shutil.copytree(tfdata, tmp_path / "tf"))
    exp = _exp(data, tmp_path, [{"algo": "bc", "task": "sink", "name": "bad_stats"}], num_steps=4)
    (data / "metadata.json").write_text("{not json")
    [outcome] = launch.launch(exp, model.Preflight(), console=Console(file=io.StringIO()))
    assert outcome.failure is not None and outcome.failure.kind is failure.FailureKind.BDV2_ERROR
    text = _summary_text([outcome])
    assert f"DataError: {data / 'metadata.json'}: not a normalisation metadata file" in text
    assert "bdv2 data stats" in text and "no known cause" not in text


def test_truncated_tfrecord_is_named_as_data_loss(tfdata: Path, tmp_path: Path) -> None:
    """A train file cut short after the config was checked (an interrupted copy): the summary names data loss,
    the file, the record where it ends and the fix, not "no known cause"."""
    import shutil

    data = Path(shutil.copytree(tfdata, tmp_path / "tf"))
    exp = _exp(data, tmp_path, [{"algo": "bc", "task": "sink", "name": "cut"}], num_steps=4)
    cut = data / "sink" / "sweep" / "train" / "out.tfrecord"
    with cut.open("r+b") as fh:
        fh.truncate(cut.stat().st_size // 2)
    [outcome] = launch.launch(exp, launch.Preflight(), console=Console(file=io.StringIO()))
    assert outcome.status == "failed" and outcome.failure is not None, Path(outcome.log).read_text()[-2000:]
    assert outcome.failure.kind is failure.FailureKind.BDV2_ERROR
    text = _summary_text([outcome])
    assert f"DataError: data loss: {cut}: truncated TFRecord: the file ends inside record 2" in text, text
    assert "Fix: delete it and re-run the command that wrote it" in text
    assert "no known cause" not in text and "doctor --deep" not in text and "bug report" not in text
