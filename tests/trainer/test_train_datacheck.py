"""`bdv2 train`'s data preflight: the quick data check runs on each run's sources against its metadata and its
init_from checkpoint, stops the launch on an error with both sides shown, and `--skip-data-check` skips it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bdv2.trainer import config, datacheck

from . import helpers


def _config(tmp_path: Path, tfdata: Path, **over: Any) -> Path:
    g = helpers.base_global(tfdata, tmp_path / "runs", **over)
    return helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "runs": [{"algo": "gc_bc", "task": "kitchen"}]})


def _flipped_metadata(tmp_path: Path) -> Path:
    meta = json.loads((helpers.write_tree(tmp_path / "tf2") / "metadata.json").read_text())
    meta["action"]["min"], meta["action"]["max"] = [-0.1] * 6 + [-1.0], [0.1] * 6 + [1.0]
    path = tmp_path / "flipped.json"
    path.write_text(json.dumps(meta))
    return path


def test_clean_data_passes(tfdata: Path, tmp_path: Path) -> None:
    exp = config.load(_config(tmp_path, tfdata))
    verdicts = datacheck.check_runs(list(exp.runs))
    assert len(verdicts) == 1 and verdicts[0].errors == 0
    result = verdicts[0].result
    assert result.quick and result.episodes == 6  # 2 kitchen tasks x 3 train trajectories
    assert result.contract["gripper"]["range"] == "[0, 1]"


def test_a_contract_mismatch_stops_the_launch(tfdata: Path, tmp_path: Path) -> None:
    from bdv2.cli import main

    cfg = _config(tmp_path, tfdata, metadata=str(_flipped_metadata(tmp_path)))
    run = CliRunner().invoke(main, ["train", "--config", str(cfg)])
    assert run.exit_code == 1, run.output
    assert "the metadata's gripper is in [-1, 1] and this data's is in [0, 1]" in run.output
    assert "nothing launched" in run.output and "--skip-data-check" in run.output
    assert not (tmp_path / "runs").exists()


def test_skip_data_check(tfdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bdv2.cli import main
    from bdv2.trainer import launch

    def refuse(runs: Any, resume: bool = True) -> Any:
        raise AssertionError("the data check ran")

    monkeypatch.setattr(datacheck, "check_runs", refuse)
    monkeypatch.setattr(launch, "run_experiments", lambda *a, **k: 0)
    cfg = _config(tmp_path, tfdata, metadata=str(_flipped_metadata(tmp_path)))
    run = CliRunner().invoke(main, ["train", "--config", str(cfg), "--skip-data-check"])
    assert run.exit_code == 0, run.output


def test_init_from_checkpoint_against_the_data(tfdata: Path, tmp_path: Path) -> None:
    """A checkpoint imported from a policy whose gripper is in [-1, 1], fine-tuned on [0, 1] data."""
    ckpt = tmp_path / "imported"
    (ckpt / "checkpoints" / "1").mkdir(parents=True)
    stats = {"mean": [0.0] * 6 + [0.0], "std": [0.01] * 6 + [0.9], "min": [-0.1] * 6 + [-1.0], "max": [0.1] * 6 + [1.0]}
    (ckpt / "config.json").write_text(json.dumps({"settings": {}, "metadata": {"action": stats, "proprio": stats}}))
    exp = config.load(_config(tmp_path, tfdata, init_from=str(ckpt)))
    [verdict] = datacheck.check_runs(list(exp.runs))
    assert verdict.init_from == [f"the checkpoint {ckpt}'s gripper is in [-1, 1] and this data's is in [0, 1]"]
    assert verdict.errors == 1


def test_a_resumed_runs_stored_statistics(tfdata: Path, tmp_path: Path) -> None:
    """A run that started with a [-1, 1] gripper's statistics cannot resume on [0, 1] data."""
    exp = config.load(_config(tmp_path, tfdata))
    run = exp.runs[0]
    run.workdir.mkdir(parents=True)
    meta = json.loads(_flipped_metadata(tmp_path).read_text())
    (run.workdir / "config.json").write_text(json.dumps({"metadata": meta}))
    [verdict] = datacheck.check_runs(list(exp.runs))
    assert verdict.stored == [f"the resumed run's {run.workdir / 'config.json'}'s gripper is in [-1, 1] and "
                              "this data's is in [0, 1]"]
    assert verdict.errors == 1
    assert datacheck.check_runs(list(exp.runs), resume=False)[0].stored == []  # --no-resume starts afresh


def test_rlds_sources(rlds_generated: Path, tmp_path: Path) -> None:
    """A task reading an RLDS directory in place: its episodes are checked, with statistics from `bdv2 data
    stats` on it (whose contract matches the data's)."""
    from bdv2.data_tools.summary import compute_stats

    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps(compute_stats(rlds_generated)))
    g = helpers.base_global(rlds_generated.parent, tmp_path / "runs", metadata=str(meta))
    runs = [{"algo": "gc_bc", "task": rlds_generated.name}]
    cfg = helpers.write_yaml(tmp_path / "r.yaml", {"global": g, "runs": runs})
    [verdict] = datacheck.check_runs(list(config.load(cfg).runs))
    episodes = helpers.RLDS_SAMPLE_ARGS["episodes"]["train"]
    assert verdict.result.episodes == episodes and verdict.errors == 0, verdict.result.to_dict()
