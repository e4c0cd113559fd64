"""`bdv2 policy check` and the command-line edges of `bdv2 serve`, on runs written from initialised parameters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bdv2.cli import main

from .test_policy import written_run


def test_check_measures_in_process_and_through_the_server(tmp_path: Path) -> None:
    pytest.importorskip("websockets", reason="the [serve] extra (websockets) is not installed")
    run = written_run(tmp_path, "gc_ddpm_bc", obs_horizon=1, act_pred_horizon=3, diffusion_steps=4)
    res = CliRunner().invoke(main, ["policy", "check", str(run), "--image-size", "16", "--serve", "-n", "8",
                                    "--json"])
    d = json.loads(res.output)
    assert res.exit_code == (0 if d["keeps_up"] else 1), res.output
    assert d["algo"] == "gc_ddpm_bc" and d["diffusion_steps"] == 4 and d["chunk"] == 3 and d["image_size"] == 16
    assert d["first_call_ms"] > 0 and d["device"].startswith("cpu")
    for part in (d["act_ms"], d["serve_ms"]):
        assert part["n"] == 8 and 0 < part["p50"] <= part["p95"] <= part["p99"] <= part["max"]
    worst = max(d["act_ms"]["p95"], d["serve_ms"]["p95"])
    assert d["keeps_up"] == (worst <= 200) and ("to spare" in d["verdict"]) == d["keeps_up"]


def test_check_text_and_a_rate_it_cannot_keep(tmp_path: Path) -> None:
    run = written_run(tmp_path, "gc_ddpm_bc", obs_horizon=1, act_pred_horizon=3, diffusion_steps=4)
    res = CliRunner().invoke(main, ["policy", "check", str(run), "--image-size", "16", "-n", "5", "--hz", "100000"])
    assert res.exit_code == 1, res.output
    assert "4-step reverse diffusion" in res.output and "first call (compile)" in res.output
    assert "SLOW: too slow for 100000 Hz" in res.output and "act_pred_horizon >=" in res.output


def test_check_needs_an_image_size_when_the_data_is_not_here(tmp_path: Path) -> None:
    run = written_run(tmp_path, "bc")
    res = CliRunner().invoke(main, ["policy", "check", str(run)])
    assert res.exit_code == 1 and "pass --image-size" in res.output, res.output


def test_serve_binds_loopback_unless_told(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["serve", str(tmp_path), "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "--allow-remote" in res.output
    res = CliRunner().invoke(main, ["serve", str(tmp_path), "--execute", "sideways", "--image-size", "16"])
    assert res.exit_code == 1


def test_serve_refuses_a_bad_strategy(tmp_path: Path) -> None:
    run = written_run(tmp_path, "gc_bc", act_pred_horizon=2)
    res = CliRunner().invoke(main, ["serve", str(run), "--execute", "receding:3", "--image-size", "16"])
    assert res.exit_code == 1 and "n must be 1..2" in res.output, res.output


def test_the_command_modules_import_nothing_heavy() -> None:
    code = ("import sys, bdv2.trainer.serve_cli; heavy = [m for m in ('jax', 'tensorflow', 'numpy', 'msgpack', "
            "'websockets') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
