"""W&B is optional and never in the way: a fake `wandb` module on the import path (no network) records what the
trainer does with it. Not configured: never imported. No credentials: offline mode with a warning. wandb
raising inside init or log: the run finishes and the warning is in its notes and summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bdv2.trainer import config, loop, model
from bdv2.trainer.metrics import MetricWriter

from . import helpers

FAKE_WANDB = '''
"""A stand-in for wandb: appends what it is asked to do to $FAKE_WANDB_LOG; $FAKE_WANDB_FAIL=init|log raises."""
import json
import os


def _record(**kw):
    with open(os.environ["FAKE_WANDB_LOG"], "a") as f:
        f.write(json.dumps(kw) + "\\n")


_record(event="import")


class Settings:
    def __init__(self, **kw):
        self.kw = kw


class _Run:
    def log(self, data, step=None):
        if os.environ.get("FAKE_WANDB_FAIL") == "log":
            raise RuntimeError("wandb log exploded")
        _record(event="log", step=step, keys=sorted(data))

    def finish(self):
        _record(event="finish")


def init(**kw):
    if os.environ.get("FAKE_WANDB_FAIL") == "init":
        raise RuntimeError("wandb init exploded")
    _record(event="init", mode=kw.get("mode"), project=kw.get("project"))
    return _Run()
'''


@pytest.fixture
def fake_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake module first on sys.path, no credentials anywhere (env, ~/.netrc); returns its record file."""
    lib = tmp_path / "fakelib"
    lib.mkdir()
    (lib / "wandb.py").write_text(FAKE_WANDB)
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    for var in ("WANDB_API_KEY", "WANDB_MODE", "FAKE_WANDB_FAIL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc with api.wandb.ai
    record = tmp_path / "wandb-calls.jsonl"
    monkeypatch.setenv("FAKE_WANDB_LOG", str(record))
    return record


def _calls(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def _run(tfdata: Path, tmp_path: Path, **over: Any) -> model.Run:
    g = helpers.base_global(tfdata, tmp_path / "runs", num_steps=4, log_interval=2, eval_interval=4,
                            save_interval=4, augment=False, **over)
    y = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "matrix": {"algos": ["bc"], "tasks": ["sink"]}})
    return config.load(y).runs[0]


def test_not_configured_wandb_is_never_imported(fake_wandb: Path, tmp_path: Path) -> None:
    writer = MetricWriter(tmp_path, "r", {}, wandb_project=None)
    writer.write(1, "train", {"loss": 1.0})
    writer.close()
    assert "wandb" not in sys.modules and _calls(fake_wandb) == [] and writer.warnings == []


def test_without_credentials_wandb_logs_offline_and_the_run_finishes(fake_wandb: Path, tfdata: Path,
                                                                     tmp_path: Path) -> None:
    result = loop.train_and_evaluate(_run(tfdata, tmp_path, wandb_project="bdv2-test"))
    assert result.status == "finished" and result.steps == 4
    calls = _calls(fake_wandb)
    assert [c for c in calls if c["event"] == "init"] == [{"event": "init", "mode": "offline",
                                                           "project": "bdv2-test"}]
    assert [c["step"] for c in calls if c["event"] == "log" and "train/loss" in c["keys"]] == [2, 4]
    assert calls[-1]["event"] == "finish"
    assert any("no credentials found, logging offline" in n for n in result.notes), result.notes


@pytest.mark.parametrize("where", ["init", "log"])
def test_wandb_raising_never_stops_the_run(fake_wandb: Path, tfdata: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    monkeypatch.setenv("FAKE_WANDB_FAIL", where)
    run = _run(tfdata, tmp_path, wandb_project="bdv2-test")
    result = loop.train_and_evaluate(run)
    assert result.status == "finished" and result.steps == 4
    warning = f"W&B disabled: RuntimeError: wandb {where} exploded"
    assert warning in result.notes
    assert warning in json.loads((run.workdir / loop.SUMMARY_FILE).read_text())["notes"]  # shown by the launcher
    assert not [c for c in _calls(fake_wandb) if c["event"] == "log"]  # disabled after the first failure
