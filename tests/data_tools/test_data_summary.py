"""`inspect` and `stats` on raw, numpy and TFRecord trees of the sample, with faults a trainer would choke on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from bdv2.data_tools import convert
from bdv2.data_tools.cli import data
from bdv2.data_tools.summary import compute_stats, inspect_tree
from bdv2.data_tools.trajectory import relabel_actions


def test_relabel_binarizes_the_gripper_backwards() -> None:
    grip = np.array([1, 1, 1, 0.5, 0, 0, 0.6, 1, 0.5])
    actions = np.zeros((9, 7))
    actions[:, 6] = grip
    out = relabel_actions(np.zeros((10, 7)), actions)
    assert out[:, 6].tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 0.5]


def test_inspect_raw_counts_and_no_problems(raw: Path, n_frames: int) -> None:
    result = inspect_tree(raw)
    assert result.kind == "raw" and not result.problems
    assert result.groups["rss/toykitchen2/sweep_beans/00 all"] == {
        "trajectories": 3, "frames": 3 * (n_frames - 2), "labeled": 0}
    assert result.image_shapes == {"480x640x3": 9}


def test_inspect_flags_mismatch_and_empty_language(raw: Path, traj: Any) -> None:
    (traj(raw, "open_drawer", 0) / "images1" / "im_2.jpg").unlink()
    (traj(raw, "open_drawer", 1) / "lang.txt").write_text("confidence: 1\n")
    problems = inspect_tree(raw).problems
    assert any("traj0: mismatched lengths" in p for p in problems)
    assert any("traj1: no language entry" in p for p in problems)


def test_inspect_and_stats_agree_across_raw_numpy_and_tfrecord(raw: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    convert.raw_to_numpy(raw, tmp_path / "np", im_size=16)
    convert.raw_to_tfrecord(raw, tmp_path / "tf", im_size=16)
    stats = [compute_stats(p) for p in (raw, tmp_path / "np", tmp_path / "tf")]
    for s in stats[1:]:  # float32 in TFRecords
        assert s["action_contract"]["frame"] == stats[0]["action_contract"]["frame"]
        np.testing.assert_allclose(s["action"]["mean"], stats[0]["action"]["mean"], atol=1e-6)
        np.testing.assert_allclose(s["proprio"]["std"], stats[0]["proprio"]["std"], atol=1e-6)
    assert inspect_tree(tmp_path / "tf", im_size=16).problems == []
    assert any("expected 32x32x3" in p for p in inspect_tree(tmp_path / "np", im_size=32).problems)


def test_stats_cli_writes_the_trainer_metadata_form(raw: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(data, ["stats", str(raw), "--out", str(tmp_path / "metadata.json")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert set(meta) == {"action", "proprio", "action_contract"}
    assert all(len(meta[k][m]) == 7 for k in ("action", "proprio") for m in ("mean", "std", "min", "max"))
    # the relabeled actions are the state's own changes: base frame, metres and radians, no latency
    contract = meta["action_contract"]
    assert (contract["frame"], contract["units"], contract["latency"], contract["actions"]) == (
        "base", "m, rad per step", 0, "relabeled")
    assert contract["gripper"]["range"] == "[0, 1]" and contract["gripper"]["polarity"] == "open_high"
    assert meta["proprio"]["mean"] != meta["action"]["mean"]  # the original reuses the action statistics
    inspect = CliRunner().invoke(data, ["inspect", str(raw)])
    assert inspect.exit_code == 0 and "sweep_beans" in inspect.output
