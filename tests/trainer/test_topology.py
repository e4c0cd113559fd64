"""Checkpoints do not depend on the devices that wrote them: a run saved from 8 (simulated CPU) devices is
resumed, evaluated (`bdv2 eval`), loaded as a policy, fine-tuned from (init_from) and exported (`bdv2
checkpoint export`) in a 1-device process, and a run saved from 1 device likewise in an 8-device process.

Each direction is two subprocesses (topology_probe.py): one saves with N devices, one uses with M, each with
XLA_FLAGS=--xla_force_host_platform_device_count set before jax starts. The two directions run side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from . import helpers

PROBE = Path(__file__).with_name("topology_probe.py")
DIRECTIONS = {"8->1": (8, 1), "1->8": (1, 8)}
NAME = "gc_bc_kitchen"


def _env(devices: int) -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _yaml(root: Path, tfdata: Path, file: str, save_dir: Path, **over: Any) -> None:
    g = helpers.base_global(tfdata, save_dir, **{"num_steps": 4, "eval_interval": 4, "save_interval": 4,
                                                 "log_interval": 2, "augment": False, **over})
    helpers.write_yaml(root / file, {"global": g, "matrix": {"algos": ["gc_bc"], "tasks": ["kitchen"]}})


def _probe(args: list[str], devices: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(PROBE), *args], env=_env(devices), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out = proc.communicate(timeout=400)[0]
    line = next((x for x in out.splitlines() if x.startswith("PROBE ")), None)
    assert proc.returncode == 0 and line is not None, out[-3000:]
    return dict(json.loads(line[len("PROBE "):]))


@pytest.fixture(scope="module")
def results(tfdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    roots = {}
    for direction in DIRECTIONS:
        root = tmp_path_factory.mktemp("topology")
        (root / "tf").symlink_to(tfdata)
        _yaml(root, tfdata, "m.yaml", root / "runs")
        _yaml(root, tfdata, "resume.yaml", root / "work" / "resumed", num_steps=6)
        _yaml(root, tfdata, "init_from.yaml", root / "work" / "tuned", num_steps=2,
              init_from=str(root / "runs" / NAME))
        roots[direction] = root
    made = {d: _probe(["make", str(roots[d])], DIRECTIONS[d][0]) for d in DIRECTIONS}
    saved = {d: _finish(p) for d, p in made.items()}
    used = {d: _probe(["use", str(roots[d]), str(roots[d] / "work")], DIRECTIONS[d][1]) for d in DIRECTIONS}
    out = {d: {"saved": saved[d], **_finish(p)} for d, p in used.items()}
    for d, (src, dst) in DIRECTIONS.items():
        assert out[d]["saved"]["devices"] == src and out[d]["saved"]["sharded_over"] == src
        assert out[d]["saved"]["steps"] == 4 and out[d]["devices"] == dst
    return out


def _ok(found: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in found, found.get("trace", found)
    return found


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_training_resumes_on_another_device_count(results: dict[str, dict[str, Any]], direction: str) -> None:
    found = _ok(results[direction]["resume"])
    assert found["saved_step"] == 4 and found["steps"] == 6 and "resumed from step 4" in found["notes"]


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_bdv2_eval_on_another_device_count(results: dict[str, dict[str, Any]], direction: str) -> None:
    found = _ok(results[direction]["eval"])
    assert found["exit_code"] == 0, found["output"]
    assert "Topology" not in found["output"] and '"trajectories": 3' in found["output"]


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_load_policy_on_another_device_count(results: dict[str, dict[str, Any]], direction: str) -> None:
    found = _ok(results[direction]["policy"])
    assert found["shape"] == [7] and found["finite"] and found["param_sum"] != 0.0


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_init_from_on_another_device_count(results: dict[str, dict[str, Any]], direction: str) -> None:
    found = _ok(results[direction]["init_from"])
    assert found == {"steps": 2, "status": "finished"}


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_checkpoint_export_on_another_device_count(results: dict[str, dict[str, Any]], direction: str) -> None:
    found = _ok(results[direction]["export"])
    assert found["exit_code"] == 0, found["output"]
    assert found["files"] == ["checkpoint_3", "config.json"]
