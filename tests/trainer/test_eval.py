"""`bdv2 eval`: a short gc_bc run on the toy trajectories (their arm drifts by a constant +2 std per step, which
a constant-mean predictor cannot follow) is scored on the held-out split; the report's structure, the PNG,
the CLI and its errors, and the figures' arithmetic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from bdv2.cli import main
from bdv2.trainer import config, evaluate

from . import helpers


@pytest.fixture(scope="module")
def trained(tfdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bdv2.trainer import loop

    tmp = tmp_path_factory.mktemp("eval")
    g = helpers.base_global(tfdata, tmp / "runs", num_steps=30, eval_interval=30, save_interval=30, log_interval=10,
                            augment=False)
    run = config.load(helpers.write_yaml(tmp / "m.yaml", {"global": g, "matrix": {"algos": ["gc_bc"],
                                                                                  "tasks": ["kitchen"]}})).runs[0]
    assert loop.train_and_evaluate(run).steps == 30
    return run.workdir


def test_policy_beats_the_constant_mean_and_writes_the_report(trained: Path, tfdata: Path, tmp_path: Path) -> None:
    report = evaluate.evaluate(trained, tfdata, "val", out_dir=tmp_path)
    d = json.loads((tmp_path / evaluate.REPORT_FILE).read_text())
    assert d == json.loads(json.dumps(report.to_dict()))
    assert d["algo"] == "gc_bc" and d["split"] == "val" and d["relabel_actions"] is True
    assert d["trajectories"] == 3 and d["steps"] == 3 * 8  # one val trajectory of 8 steps per task
    assert d["goal"] == evaluate.GOAL_CHOICE and d["checkpoint"].endswith("checkpoints/30")
    for who in ("policy", "baseline"):
        assert list(d[who]["mse"]) == list(evaluate.DIMS)
        assert 0.0 <= d[who]["gripper_accuracy"] <= 1.0
    # the baseline predicts 0 for a drift of 0.02 +- 0.01 per step: about 0.02^2 + 0.01^2 = 5e-4 per arm dimension
    assert all(2e-4 < d["baseline"]["mse"][k] < 9e-4 for k in evaluate.DIMS[:6]), d["baseline"]
    assert d["baseline"]["gripper_accuracy"] == 0.5  # mean 0.5 reads "closed"; half the steps are open
    assert d["policy"]["mse_normalised"] < 0.5 * d["baseline"]["mse_normalised"], (d["policy"], d["baseline"])
    assert d["policy_beats_baseline"] is True
    png = Path(d["plot"])
    assert png.parent == tmp_path and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_json_and_trajectory_limit(trained: Path, tfdata: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["eval", str(trained), "--data", str(tfdata / "sink"), "--json",
                                    "--trajectories", "1", "--out", str(tmp_path), "--plot-trajectories", "0"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout[res.stdout.index("{"):])
    assert d["trajectories"] == 1 and d["plot"] is None and not (tmp_path / evaluate.PLOT_FILE).exists()
    table = CliRunner().invoke(main, ["eval", str(trained), "--data", str(tfdata / "sink"), "--out", str(tmp_path)])
    assert table.exit_code == 0 and "gripper accuracy" in table.stdout and "baseline" in table.stdout


@pytest.mark.parametrize(("make_args", "message"), [
    (lambda run, data, tmp: [str(tmp), "--data", str(data)], "not a bdv2 run directory"),
    (lambda run, data, tmp: [str(run), "--data", str(data), "--split", "test"],
     r"no 'test' split \(found: train, val\)"),
    (lambda run, data, tmp: [str(run), "--data", str(tmp / "nowhere")], "no such file or directory"),
])
def test_cli_errors_name_the_problem(trained: Path, tfdata: Path, tmp_path: Path, make_args: Any,
                                     message: str) -> None:
    res = CliRunner().invoke(main, ["eval", *make_args(trained, tfdata, tmp_path)])
    assert res.exit_code == 1 and res.output.count("Error") == 1
    assert __import__("re").search(message, res.output), res.output


def test_run_without_checkpoint_is_a_clear_error(trained: Path, tfdata: Path, tmp_path: Path) -> None:
    empty = tmp_path / "run"
    (empty / "checkpoints").mkdir(parents=True)
    (empty / "config.json").write_text((trained / "config.json").read_text())
    with pytest.raises(evaluate.EvalError, match="no checkpoint"):
        evaluate.evaluate(empty, tfdata)


def test_history_repeats_the_first_frame() -> None:
    np.testing.assert_array_equal(evaluate.history(np.arange(4), 3), [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]])


def test_score_arithmetic() -> None:
    true = np.zeros((4, 7), np.float32)
    true[:2, 6] = 1.0
    pred = np.full((4, 7), 0.5, np.float32)
    pred[:, 6] = [0.9, 0.2, 0.1, 0.6]  # right, wrong, right, wrong
    s = evaluate.score(pred, true, np.full(7, 0.5, np.float32))
    assert s.mse[0] == pytest.approx(0.25) and s.gripper_accuracy == 0.5
    assert s.mse_normalised == pytest.approx(np.mean(np.array(s.mse) / 0.25))


def test_rlds_directory_gives_relabelled_trajectories(rlds_generated: Path) -> None:
    files, dirs = evaluate.find_split(rlds_generated, "val")
    assert files == [] and len(dirs) == 1
    trajs = list(evaluate.trajectories(files, dirs, "val", relabel=True, limit=None))
    assert len(trajs) == helpers.RLDS_SAMPLE_ARGS["episodes"]["val"]
    for t in trajs:
        proprio, nxt = t["observations"]["proprio"], t["next_observations"]["proprio"]
        np.testing.assert_allclose(t["actions"][:, :6], nxt[:, :6] - proprio[:, :6], atol=1e-6)  # reached deltas
        assert set(np.unique(t["actions"][:, 6])) <= {0.0, 1.0}
    with pytest.raises(evaluate.EvalError, match=r"no 'test' split \(found: train, val\)"):
        evaluate.find_split(rlds_generated, "test")


def test_policy_acts_in_the_contracts_units(trained: Path, tfdata: Path) -> None:
    """load_policy().act() returns un-normalised actions that keep the run's action contract."""
    from bdv2.data_tools import contract, schema
    from bdv2.trainer.policy import load_policy

    policy = load_policy(trained)
    assert policy.action_contract is not None and policy.action_contract.gripper.range == "[0, 1]"
    traj = next(schema.read_tfrecord(next(tfdata.rglob("val/out.tfrecord"))))
    frames, states = traj["observations/images0"], traj["observations/state"]
    actions = np.stack([policy.act({"image": frames[t], "proprio": states[t]}, {"image": frames[-1]})
                        for t in range(len(frames))])
    assert contract.check_actions(policy.action_contract, actions) == []
    # un-normalised: the arm moves about 0.02 per step in the data; normalised values would be about 2
    assert np.abs(actions[:, :6]).mean() < 0.1
