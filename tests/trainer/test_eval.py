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
from bdv2.trainer import config, eval_stats, evaluate

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


def test_cli_reads_held_out_data_from_a_url(trained: Path, tfdata: Path, tmp_path: Path) -> None:
    """--data through bdv2.paths: TensorFlow's in-memory file system stands in for a bucket (same process)."""
    import tensorflow as tf

    url = f"ram://eval-{tmp_path.name}"
    for f in (tfdata / "sink").rglob("*.tfrecord"):
        dest = f"{url}/{f.relative_to(tfdata / 'sink').as_posix()}"
        tf.io.gfile.makedirs(dest.rsplit("/", 1)[0])
        tf.io.gfile.copy(str(f), dest)
    local = CliRunner().invoke(main, ["eval", str(trained), "--data", str(tfdata / "sink"), "--json",
                                      "--out", str(tmp_path / "local"), "--plot-trajectories", "0"])
    remote = CliRunner().invoke(main, ["eval", str(trained), "--data", url, "--json", "--out",
                                       str(tmp_path / "url"), "--plot-trajectories", "0"])
    assert remote.exit_code == 0, remote.output
    a, b = (json.loads(r.stdout[r.stdout.index("{"):]) for r in (local, remote))
    assert b["data"] == url and b["trajectories"] == a["trajectories"] > 0
    assert b["policy"] == a["policy"] and b["baseline"] == a["baseline"]  # the same data, the same scores
    bad = CliRunner().invoke(main, ["eval", str(trained), "--data", "nosuch://bucket/val"])
    assert bad.exit_code == 2 and "cannot open nosuch:// URLs" in bad.output


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


@pytest.fixture(scope="module")
def barely_trained(tfdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two steps of training: a policy that is hardly different from the training action mean."""
    from bdv2.trainer import loop

    tmp = tmp_path_factory.mktemp("eval_short")
    g = helpers.base_global(tfdata, tmp / "runs", num_steps=2, eval_interval=2, save_interval=2, log_interval=1,
                            augment=False)
    run = config.load(helpers.write_yaml(tmp / "m.yaml", {"global": g, "matrix": {"algos": ["bc"],
                                                                                  "tasks": ["kitchen"]}})).runs[0]
    loop.train_and_evaluate(run)
    return run.workdir


def test_two_trajectories_do_not_make_a_verdict(barely_trained: Path, tfdata: Path, tmp_path: Path) -> None:
    """The user's case: a barely trained run on 2 held-out trajectories is not called better than the baseline."""
    res = CliRunner().invoke(main, ["eval", str(barely_trained), "--data", str(tfdata), "--trajectories", "2",
                                    "--out", str(tmp_path), "--plot-trajectories", "0"])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / evaluate.REPORT_FILE).read_text())
    mse, grip = d["statistics"]
    assert mse["figure"] == "normalised MSE" and mse["trajectories"] == 2
    assert 0.9 < d["policy"]["mse_normalised"] / d["baseline"]["mse_normalised"] < 1.1, d
    assert mse["paired_t_test_p"] >= 0.05 and mse["verdict"] == "not distinguishable"
    assert d["policy_beats_baseline"] is False
    assert "beats" not in res.stdout
    assert "normalised MSE" in res.stdout and "not distinguishable with 2 trajectories" in res.stdout
    assert mse["trajectories_needed"] is not None
    assert (f"about {mse['trajectories_needed']} trajectories would show a difference" in res.stdout
            if mse["trajectories_needed"] > 2 else "more than 2 trajectories are needed" in res.stdout), res.stdout
    assert len(mse["policy_ci95"]) == 2 and len(grip["baseline_ci95"]) == 2
    sized = CliRunner().invoke(main, ["eval", str(barely_trained), "--data", str(tfdata), "--trajectories", "2",
                                      "--out", str(tmp_path), "--plot-trajectories", "0", "--difference", "0.5"])
    assert "would show a difference of 0.5 80 % of the time" in sized.stdout, sized.stdout


def test_two_runs_are_compared_on_the_same_trajectories(trained: Path, barely_trained: Path, tfdata: Path,
                                                         tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["eval", str(trained), "--data", str(tfdata), "--compare", str(barely_trained),
                                    "--out", str(tmp_path), "--plot-trajectories", "0"])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / evaluate.REPORT_FILE).read_text())
    a, b = trained.name, barely_trained.name
    pair = next(s for s in d["statistics"] if s["figure"] == f"normalised MSE, {a} vs {b}")
    assert pair["names"] == [a, b] and pair["trajectories"] == d["trajectories"]
    assert pair["policy"] == pytest.approx(d["policy"]["mse_normalised"])  # this run's own figure, same yardstick
    assert f"normalised MSE, {a} vs {b}: {a} " in res.stdout
    verdict = {"better": f"{a} is better than {b}", "worse": f"{a} is WORSE than {b}",
               "not distinguishable": f"not distinguishable with {d['trajectories']} trajectories"}[pair["verdict"]]
    assert verdict in res.stdout


def test_a_clear_win_is_called_with_its_interval(trained: Path, tfdata: Path, tmp_path: Path) -> None:
    report = evaluate.evaluate(trained, tfdata, "val", out_dir=tmp_path, plot_trajectories=0)
    mse = report.comparisons[0]
    assert mse.verdict is eval_stats.Verdict.BETTER and mse.p_value is not None and mse.p_value < 0.05
    assert mse.difference_ci is not None and mse.difference_ci[1] < 0  # the whole interval favours the policy
    assert mse.policy_ci is not None and mse.policy_ci[0] <= mse.policy <= mse.policy_ci[1]


@pytest.mark.parametrize(("policy", "baseline", "verdict"), [
    # the reported case: ratio 0.97 on 2 trajectories, one better and one worse
    ([0.90, 1.04], [1.0, 1.0], "not distinguishable"),
    ([0.50, 0.52, 0.49, 0.51, 0.50, 0.53], [1.0, 1.01, 0.99, 1.0, 1.02, 1.0], "better"),
    ([1.50, 1.52, 1.49, 1.51], [1.0, 1.01, 0.99, 1.0], "worse"),
    ([0.7], [1.0], "not distinguishable"),  # one trajectory decides nothing
])
def test_paired_verdicts(policy: list[float], baseline: list[float], verdict: str) -> None:
    steps = np.full(len(policy), 10.0)
    c = eval_stats.compare(eval_stats.PerTrajectory(steps, np.array(policy) * steps, np.array(baseline) * steps),
                           "normalised MSE", lower_is_better=True)
    assert c.verdict.value == verdict
    assert (f"not distinguishable with {len(policy)} trajector" in c.sentence()) == (verdict == "not distinguishable")


def test_needed_never_claims_fewer_trajectories_than_failed() -> None:
    # two trajectories with a large, consistent-looking difference that the test cannot call (p > 0.05): the
    # power estimate from their spread would say 2; the sentence must not claim that 2 would do
    steps = np.array([10.0, 10.0])
    per = eval_stats.PerTrajectory(steps, np.array([0.10, 0.14]) * steps, np.array([0.36, 0.34]) * steps)
    c = eval_stats.compare(per, "normalised MSE", lower_is_better=True)
    assert c.verdict is eval_stats.Verdict.NOT_DISTINGUISHABLE
    assert c.needed == 2  # what the spread of these two alone suggests ...
    assert "would show" not in c.sentence()  # ... is not claimed
    assert "more than 2 trajectories are needed: these 2 did not show it" in c.sentence()


@pytest.mark.parametrize(("effect_size", "pairs"), [(0.2, 199), (0.5, 34), (0.8, 15)])
def test_trajectories_needed_matches_a_power_table(effect_size: float, pairs: int) -> None:
    # mean difference / sd of the differences -> pairs for 80 % power, two-sided 5 %, paired t-test (the values
    # of G*Power and of Cohen's tables)
    diffs = np.array([1.0, -1.0])  # sd sqrt(2)
    assert eval_stats.trajectories_needed(diffs, effect=effect_size * float(np.std(diffs, ddof=1))) == pairs
    assert eval_stats.trajectories_needed(np.array([0.1])) is None


def test_truncated_val_file_is_one_line_naming_it(trained: Path, tfdata: Path, tmp_path: Path) -> None:
    import shutil

    data = Path(shutil.copytree(tfdata, tmp_path / "tf"))
    cut = data / "kitchen" / "open_drawer" / "val" / "out.tfrecord"
    with cut.open("r+b") as fh:
        fh.truncate(cut.stat().st_size // 2)
    res = CliRunner().invoke(main, ["eval", str(trained), "--data", str(data), "--out", str(tmp_path / "e")])
    assert res.exit_code == 1 and "Traceback" not in res.output and "DataLossError" not in res.output
    [line] = [line for line in res.output.splitlines() if line.startswith("Error")]
    assert f"Error: {cut}: truncated TFRecord: the file ends inside record 1" in line, res.output
    assert "Fix: delete it and re-run the command that wrote it" in line


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
