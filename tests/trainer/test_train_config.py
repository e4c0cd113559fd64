"""multi_train.yaml validation (one test per bad input, exact key in the message) and the matrix/runs expansion."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bdv2.trainer import batching, config, model
from bdv2.trainer.errors import ConfigError

from . import helpers


def _load(tmp_path: Path, data: dict[str, Any] | str, **kw: Any) -> model.Experiments:
    return config.load(helpers.write_yaml(tmp_path / "multi_train.yaml", data), **kw)


def _good(tfdata: Path, tmp_path: Path, **over: Any) -> dict[str, Any]:
    return {"global": helpers.base_global(tfdata, tmp_path / "runs", **over),
            "matrix": {"algos": ["gc_bc", "bc"], "tasks": ["kitchen", "sink"]}}


def test_matrix_expands_algo_major(tfdata: Path, tmp_path: Path) -> None:
    exp = _load(tmp_path, _good(tfdata, tmp_path))
    assert [r.name for r in exp.runs] == ["gc_bc_kitchen", "gc_bc_sink", "bc_kitchen", "bc_sink"]
    kitchen = exp.runs[0].task
    assert len(kitchen.sources) == 1 and len(kitchen.sources[0].train_files) == 2  # both tasks under kitchen/
    assert kitchen.metadata == str(tfdata / "metadata.json")
    assert exp.runs[0].decay_steps == 1_000_000


def test_runs_override_and_win_over_matrix(tfdata: Path, tmp_path: Path) -> None:
    data = _good(tfdata, tmp_path, decay_steps_gc_bc=500)
    data["runs"] = [
        {"algo": "gc_bc", "task": "kitchen/put_carrot", "name": "short",
         "config_overrides": {"config.batch_size": 4, "num_steps": 3}},
        {"algo": "gc_ddpm_bc", "task": "sink"},
    ]
    exp = _load(tmp_path, data)
    assert [r.name for r in exp.runs] == ["short", "gc_ddpm_bc_sink"]
    assert exp.runs[0].settings.train_batch_size == 4 and exp.runs[0].settings.num_steps == 3
    assert exp.runs[0].decay_steps == 500
    assert exp.runs[1].settings.obs_horizon == 1 and exp.runs[1].settings.act_pred_horizon == 1
    assert any("matrix: ignored" in n for n in exp.notes)


def test_task_definitions_with_weights(tfdata: Path, tmp_path: Path) -> None:
    data = _good(tfdata, tmp_path)
    data["tasks"] = {"mix": {"include": ["kitchen/*", "sink"], "exclude": ["kitchen/open_*"],
                             "sample_weights": [3, 1]}}
    data["matrix"]["tasks"] = ["mix"]
    task = _load(tmp_path, data).runs[0].task
    assert [s.weight for s in task.sources] == [0.75, 0.25]
    assert [Path(f).parts[-3] for f in task.sources[0].train_files] == ["put_carrot"]


def test_only_keeps_named_runs_and_suggests(tfdata: Path, tmp_path: Path) -> None:
    exp = _load(tmp_path, _good(tfdata, tmp_path))
    assert [r.name for r in config.only(exp, ["bc_sink"]).runs] == ["bc_sink"]
    with pytest.raises(ConfigError, match=r"(?s)--only: no run named 'bc_snk'.*did you mean 'bc_sink'"):
        config.only(exp, ["bc_snk"])


def _bad(tfdata: Path, tmp_path: Path, edit: Any) -> dict[str, Any]:
    data = _good(tfdata, tmp_path)
    edit(data)
    return data


BAD: list[Any] = [
    pytest.param(lambda d: d.update(matirx=d["matrix"]), r"matirx: unknown key.*did you mean 'matrix'",
                 id="unknown-top-key"),
    pytest.param(lambda d: d["global"].update(train_bach_size=8),
                 r"global\.train_bach_size: unknown key.*did you mean 'train_batch_size'", id="unknown-global-key"),
    pytest.param(lambda d: d["global"].update(num_steps="many"), r"global\.num_steps: expected int, got str",
                 id="wrong-type"),
    pytest.param(lambda d: d["global"].update(num_steps="2e6"), r"global\.num_steps: .*YAML 1\.1 reads 1e6 as a "
                 r"string.*write 2000000", id="yaml-1.1-float"),
    pytest.param(lambda d: d["global"].update(use_proprio="yes please"), r"global\.use_proprio: expected bool",
                 id="wrong-bool"),
    pytest.param(lambda d: d["global"].update(log_interval=0), r"global\.log_interval: must be a positive",
                 id="zero-interval"),
    pytest.param(lambda d: d["global"].pop("data_root"), r"global\.data_root: missing", id="missing-data-root"),
    pytest.param(lambda d: d["global"].update(data_root="/nonexistent/x"),
                 r"global\.data_root: /nonexistent/x is not a directory", id="data-root-not-a-dir"),
    pytest.param(lambda d: d["matrix"].update(tasks=["kitchn"]),
                 r"matrix\.tasks\[0\]: no train/out\.tfrecord under .*kitchn.*did you mean 'kitchen'",
                 id="task-without-data"),
    pytest.param(lambda d: d["matrix"].update(algos=["gc_bcc"]),
                 r"matrix\.algos\[0\]: unknown algorithm 'gc_bcc'.*did you mean 'gc_bc'", id="unknown-algo"),
    pytest.param(lambda d: d["global"].update(encoder="resnet34"), r"global\.encoder: unknown value 'resnet34'",
                 id="unknown-encoder"),
    pytest.param(lambda d: d["global"].update(jax_platform_name="gpu", cuda_visible_devices="0,1,2"),
                 r"global\.train_batch_size: 8 is not divisible by the 3 device", id="batch-vs-devices"),
    pytest.param(lambda d: d["global"].update(xla_flags="--xla_force_host_platform_device_count=3"),
                 r"global\.train_batch_size: 8 is not divisible by the 3 device", id="batch-vs-cpu-devices"),
    pytest.param(lambda d: d["global"].update(jax_platform_name=None, cuda_visible_devices="-1",
                                              xla_flags="--xla_force_host_platform_device_count=3"),
                 r"global\.train_batch_size: 8 is not divisible by the 3 device", id="batch-vs-gpus-hidden-by-minus-1"),
    pytest.param(lambda d: d["global"].update(metadata="missing.json"),
                 r"global\.metadata: normalisation statistics .*missing\.json not found.*bdv2 data stats",
                 id="missing-metadata"),
    pytest.param(lambda d: d.update(runs=[{"algo": "bc", "task": "sink", "name": "x"},
                                          {"algo": "gc_bc", "task": "sink", "name": "x"}]),
                 r"runs\[1\]: run name 'x' is used twice", id="duplicate-run-name"),
    pytest.param(lambda d: d.update(runs=[{"algo": "bc", "task": "sink", "extra_args": ["--x"]}]),
                 r"runs\[0\]\.extra_args: unknown key", id="unknown-run-key"),
    pytest.param(lambda d: d.update(runs=[{"algo": "bc", "task": "sink", "config_overrides": {"num_step": 3}}]),
                 r"runs\[0\]\.config_overrides\.num_step: unknown setting.*did you mean 'num_steps'",
                 id="unknown-override"),
    pytest.param(lambda d: (d.update(tasks={"t": {"include": ["sink"], "sample_weights": [1, 2]}}),
                                d["matrix"].update(tasks=["t"])),
                 r"tasks\.t\.sample_weights: expected 1 positive numbers", id="bad-weights"),
    pytest.param(lambda d: d.pop("matrix"), r"matrix: need either matrix", id="no-runs"),
    pytest.param(lambda d: d.pop("global"), r"global: missing or empty", id="no-global"),
]


@pytest.mark.parametrize(("edit", "message"), BAD)
def test_bad_config_names_file_and_key(tfdata: Path, tmp_path: Path, edit: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="(?s)" + message) as info:
        _load(tmp_path, _bad(tfdata, tmp_path, edit))
    assert str(info.value).startswith(str(tmp_path / "multi_train.yaml"))


def test_duplicate_key_is_rejected_with_lines(tmp_path: Path) -> None:
    text = "global:\n  data_root: a\n  decay_steps_bc: 10\n  save_dir: b\n  decay_steps_bc: 10\nmatrix: {}\n"
    with pytest.raises(ConfigError, match=r"decay_steps_bc: duplicate key at line 5 \(first at line 3\)"):
        _load(tmp_path, text)


def test_yaml_object_tags_are_not_constructed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        _load(tmp_path, "global: !!python/object/apply:os.system ['echo hi']\n")


def test_run_roundtrips_through_json(tfdata: Path, tmp_path: Path) -> None:
    run = _load(tmp_path, _good(tfdata, tmp_path)).runs[0]
    assert model.Run.from_dict(run.to_dict()) == run


def test_device_count_before_launch_follows_bdv2_devices() -> None:
    """The settings' env keys are read as bdv2.devices reads an environment (as the doctor does): the CUDA runtime
    stops at -1, and with no GPU visible the CPU backend counts the forced host devices."""
    s = config.Settings(data_root="d", save_dir="s")
    assert batching.run_devices(s).n is None  # nothing said: only a running jax can tell
    for cvd, n in (("0,1,2", 3), ("0,-1,2", 1), ("-1", 4), ("", 4)):
        got = batching.run_devices(dataclasses.replace(s, cuda_visible_devices=cvd,
                                                       xla_flags="--xla_force_host_platform_device_count=4"))
        assert got.n == n, (cvd, got)
    cpu = dataclasses.replace(s, jax_platform_name="cpu", cuda_visible_devices="0,1")
    assert batching.run_devices(cpu).n == 1


def test_one_divisibility_check_names_the_first_bad_size() -> None:
    batching.check_divisible({"train_batch_size": 12, "val_batch_size": None}, 4, "m.yaml", "global")
    with pytest.raises(ConfigError) as e:
        batching.check_divisible({"train_batch_size": 12, "val_batch_size": 10}, 4, "m.yaml", "global",
                                 context="this run will see")
    assert (e.value.file, e.value.key) == ("m.yaml", "global.val_batch_size")
    assert e.value.problem == "10 is not divisible by the 4 device(s) this run will see"
    assert "multiple of 4" in e.value.fix


@pytest.mark.parametrize(("algo", "encoder"), [("lc_bc", "tiny"), ("gc_bc", "tiny-film")])
def test_film_encoder_goes_with_lc_bc_only(tmp_path: Path, algo: str, encoder: str) -> None:
    """Caught when the config loads (--dry-run), not in the child process."""
    g = {**helpers.base_global(helpers.write_tree(tmp_path / "d"), tmp_path / "runs"), "encoder": encoder}
    y = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "matrix": {"algos": [algo], "tasks": ["kitchen"]}})
    with pytest.raises(config.ConfigError, match=r"encoder.*cannot use encoder") as e:
        config.load(y)
    assert "global.encoder" in str(e.value)


def test_run_json_records_the_defaults_that_depend_on_other_settings(tfdata: Path, tmp_path: Path) -> None:
    g = helpers.base_global(tfdata, tmp_path / "runs", decay_steps_bc=500)
    del g["val_batch_size"]
    g["num_steps"] = 400
    exp = _load(tmp_path, {"global": g, "matrix": {"algos": ["gc_bc", "bc"], "tasks": ["kitchen"]}})
    gc_bc, bc = (r.to_dict()["settings"] for r in exp.runs)
    assert gc_bc["val_batch_size"] == gc_bc["train_batch_size"] == 8
    assert (gc_bc["decay_steps"], bc["decay_steps"]) == (1_000_000, 500), "each algorithm's own decay key"
    assert (gc_bc["load_language"], gc_bc["skip_unlabeled"]) == (False, False)
    assert exp.runs[1].origins["decay_steps"] == "algorithm default"
    # a decay filled in from decay_steps_bc is named by that key when it is refused
    g["decay_steps_bc"] = 1
    with pytest.raises(ConfigError, match=r"decay_steps_bc 1 ends before warmup_steps 2"):
        _load(tmp_path, {"global": g, "matrix": {"algos": ["bc"], "tasks": ["kitchen"]}})
