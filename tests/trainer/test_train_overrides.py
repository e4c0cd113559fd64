"""Settings as a user sets them: command-line --set overrides, matrix sweeps of any setting with readable run
names, --dry-run showing every resolved setting with where it came from (and --json), and a learning-rate
schedule that does not fit num_steps refused or noted at validation, naming both numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bdv2.cli import main
from bdv2.trainer import config
from bdv2.trainer.errors import ConfigError
from bdv2.trainer.settings import SETTING_KEYS

from . import helpers


def _yaml(tmp_path: Path, tfdata: Path, matrix: dict[str, Any] | None = None, runs: list[dict[str, Any]] | None = None,
          **over: Any) -> Path:
    g = helpers.base_global(tfdata, tmp_path / "runs", **over)
    data: dict[str, Any] = {"global": g}
    if runs is not None:
        data["runs"] = runs
    else:
        data["matrix"] = matrix or {"algos": ["bc"], "tasks": ["sink"]}
    return helpers.write_yaml(tmp_path / "m.yaml", data)


def _train(*args: str) -> Any:
    return CliRunner().invoke(main, ["train", *args])


# -- the learning-rate schedule against num_steps ------------------------------------------------

def test_a_short_run_with_the_default_warmup_is_refused(tfdata: Path, tmp_path: Path) -> None:
    """The reported case: 400 steps at lr 3e-3 with the default 2,000 warmup steps would peak at 6e-4."""
    g = helpers.base_global(tfdata, tmp_path / "runs", num_steps=400, learning_rate=3e-3)
    del g["warmup_steps"]
    cfg = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "matrix": {"algos": ["bc"], "tasks": ["sink"]}})
    res = _train(str(cfg), "--dry-run")
    assert res.exit_code == 1 and not (tmp_path / "runs").exists()
    assert (f"{cfg}: warmup_steps (default): 2,000 steps of warmup is longer than num_steps 400: the learning rate "
            "would reach only 20% of learning_rate 0.003 (0.0006) at the last step") in res.output, res.output
    assert "fix: set warmup_steps to at most num_steps (a tenth of the run: 40), or raise num_steps" in res.output


def test_warmup_set_in_a_run_is_named_there(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata, runs=[{"algo": "bc", "task": "sink", "config_overrides": {"warmup_steps": 50}}],
                num_steps=20)
    with pytest.raises(ConfigError, match=r"runs\[0\]\.warmup_steps: 50 steps of warmup is longer than num_steps 20"):
        config.load(cfg, devices=1)


def test_a_decay_shorter_than_the_warmup_is_refused(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata, num_steps=100, warmup_steps=30, decay_steps_bc=20)
    with pytest.raises(ConfigError, match=r"global\.decay_steps_bc: decay_steps_bc 20 ends before warmup_steps 30"):
        config.load(cfg, devices=1)


def test_a_decay_that_ends_early_is_a_note_with_both_numbers(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata, num_steps=100, decay_steps_bc=60)
    exp = config.load(cfg, devices=1)
    assert exp.notes[0] == ("bc_sink: the learning rate decays to 0 at step 60 (decay_steps_bc) and the last 40 of "
                            "num_steps 100 train at 0; set decay_steps_bc: 100 to decay over the whole run")
    res = _train(str(cfg), "--dry-run")
    assert res.exit_code == 0 and "note: bc_sink: the learning rate decays to 0 at step 60" in res.output


# -- --dry-run: every setting, with where it came from -------------------------------------------

def test_dry_run_shows_every_setting_with_its_origin(tfdata: Path, tmp_path: Path) -> None:
    # seed: 42 set on purpose in global equals the default and must still show, as set in global
    cfg = _yaml(tmp_path, tfdata, runs=[{"algo": "gc_ddpm_bc", "task": "sink",
                                         "config_overrides": {"dropout": 0.0}}], seed=42)
    res = _train(str(cfg), "--dry-run", "--set", "lr=1e-3")
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line for line in res.output.splitlines() if line.startswith("    ")}
    assert set(SETTING_KEYS) <= set(lines), sorted(set(SETTING_KEYS) - set(lines))
    assert lines["seed"].split()[1:] == ["42", "[global]"]
    assert lines["learning_rate"].split()[1:] == ["0.001", "[--set]"]
    assert lines["dropout"].split()[1:] == ["0.0", "[run]"]
    assert lines["obs_horizon"].split()[1:] == ["1", "[algorithm", "default]"]
    assert lines["diffusion_steps"].split()[1:] == ["20", "[default]"]


def test_dry_run_json(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata, matrix={"algos": ["bc"], "tasks": ["sink"], "seed": [0, 1]})
    res = _train("--config", str(cfg), "--dry-run", "--json", "--set", "encoder=tiny")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["config"] == str(cfg) and [r["name"] for r in plan["runs"]] == ["bc_sink_seed0", "bc_sink_seed1"]
    run = plan["runs"][1]
    assert set(run["settings"]) == set(SETTING_KEYS)
    assert run["settings"]["seed"] == {"value": 1, "from": "matrix"}
    assert run["settings"]["encoder"] == {"value": "tiny", "from": "--set"}
    assert run["settings"]["num_steps"] == {"value": 20, "from": "global"}
    # filled in from the algorithm's own decay key (decay_steps_bc), so run.json records what runs
    assert run["settings"]["decay_steps"] == {"value": 1_000_000, "from": "algorithm default"}
    assert run["decay_steps"] == 1_000_000
    assert run["env"]["JAX_PLATFORMS"] == "cpu" and run["data"][0]["train_files"] == 1
    assert _train(str(cfg), "--json").exit_code == 2  # --json without --dry-run


# -- --set ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("items", "message"), [
    (["lerning_rate=3e-4"], "command line: --set lerning_rate: unknown setting\n  fix: did you mean 'learning_rate'?"),
    (["encoder=resnetv1-18-bridg"], "command line: --set encoder: unknown value 'resnetv1-18-bridg'\n"
                                    "  fix: did you mean 'resnetv1-18-bridge'?"),
    (["num_steps=many"], "command line: --set num_steps: expected int, got str 'many'"),
    (["lr"], "command line: --set lr: expected KEY=VALUE"),
])
def test_set_is_checked_like_the_yaml(tfdata: Path, tmp_path: Path, items: list[str], message: str) -> None:
    cfg = _yaml(tmp_path, tfdata)
    res = _train(str(cfg), "--dry-run", *[a for item in items for a in ("--set", item)])
    assert res.exit_code == 1 and message in res.output, res.output


def test_set_reaches_every_run_and_the_fork_names_work(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata, matrix={"algos": ["bc", "gc_bc"], "tasks": ["sink"]})
    cli = config.parse_set(["lr=3e-4", "config.agent_kwargs.warmup_steps=5", "encoder=tiny", "steps=30"])
    assert cli == {"learning_rate": 3e-4, "warmup_steps": 5, "encoder": "tiny", "num_steps": 30}
    exp = config.load(cfg, devices=1, cli=cli)
    for run in exp.runs:
        assert (run.settings.learning_rate, run.settings.warmup_steps, run.settings.num_steps) == (3e-4, 5, 30)
        assert run.origins["learning_rate"] == "--set"


def test_set_over_a_swept_setting_is_refused(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata, matrix={"algos": ["bc"], "tasks": ["sink"], "lr": [1.0e-3, 3.0e-4]})
    with pytest.raises(ConfigError, match=r"--set learning_rate: the matrix of .* sweeps learning_rate"):
        config.load(cfg, devices=1, cli=config.parse_set(["lr=1e-4"]))


def test_config_given_twice_or_not_at_all_is_a_usage_error(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata)
    assert _train(str(cfg), "--config", str(cfg), "--dry-run").exit_code == 2
    assert _train("--dry-run").exit_code == 2


# -- matrix sweeps -------------------------------------------------------------------------------

def test_matrix_sweeps_any_setting_with_readable_names(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata, matrix={"algos": ["bc"], "tasks": ["sink", "kitchen"],
                                          "lr": [3.0e-4, 1.0e-3], "seed": [0, 1]})
    exp = config.load(cfg, devices=1)
    assert [r.name for r in exp.runs] == [
        f"bc_{t}_lr{lr}_seed{s}" for t in ("sink", "kitchen") for lr in ("0.0003", "0.001") for s in (0, 1)]
    run = exp.runs[3]
    assert (run.settings.learning_rate, run.settings.seed) == (1e-3, 1)
    assert run.origins["learning_rate"] == run.origins["seed"] == "matrix"


def test_name_format_may_place_a_swept_setting(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata, matrix={"algos": ["bc"], "tasks": ["sink"], "seed": [3, 4]},
                name_format="s{seed}-{algo}")
    assert [r.name for r in config.load(cfg, devices=1).runs] == ["s3-bc", "s4-bc"]


@pytest.mark.parametrize(("sweep", "message"), [
    ({"learning_rat": [1.0e-3]}, r"matrix\.learning_rat: unknown setting\n  fix: did you mean 'learning_rate'\?"),
    ({"seed": 3}, r"matrix\.seed: expected a non-empty list of values to sweep, got 3"),
    ({"seed": []}, r"matrix\.seed: expected a non-empty list of values to sweep"),
    ({"encoder": ["tiny", "resnet"]}, r"matrix\.encoder: unknown value 'resnet'"),
    ({"lr": ["3e-4"]}, r"matrix\.learning_rate: got the text '3e-4': YAML 1\.1 reads"),
])
def test_a_bad_sweep_is_named(tfdata: Path, tmp_path: Path, sweep: dict[str, Any], message: str) -> None:
    cfg = _yaml(tmp_path, tfdata, matrix={"algos": ["bc"], "tasks": ["sink"], **sweep})
    with pytest.raises(ConfigError, match=message):
        config.load(cfg, devices=1)


def test_runs_that_cannot_be_exported_are_told_before_training(tfdata: Path, tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, tfdata, matrix={"algos": ["bc", "gc_bc"], "tasks": ["sink"]})  # encoder: tiny
    res = _train(str(cfg), "--dry-run")
    assert res.exit_code == 0
    assert ("note: encoder 'tiny' (bc_sink, gc_bc_sink) has no counterpart in the original BridgeData V2 code: "
            "`bdv2 checkpoint export --to jaxrl_m` will refuse these runs") in res.output
    exportable = config.load(cfg, devices=1, cli=config.parse_set(["encoder=resnetv1-18-bridge"]))
    assert not any("counterpart" in n for n in exportable.notes)
