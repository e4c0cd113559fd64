"""`bdv2 doctor --fix --yes` then `--undo` on a real venv: healed in between, byte-identical after.

Builds a venv with jax 0.10.2 and a skewed jaxlib 0.9.2 (a package error the nearest row fixes with
pip) and adds one matrix rule whose fix is an environment edit, so both halves of --fix run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bdv2.doctor.matrix import default_matrix_path
from bdv2.doctor.repair.envfile import BEGIN

pytestmark = pytest.mark.slow

ENV_RULE = """
[[rules]]
id = "test-env-edit"
severity = "warning"
area = "env"
title = "test rule: jax is installed, so set an XLA flag"
reason = "exercises the environment half of --fix"
source = "measured: tests/doctor/test_fix_undo_venv.py"
fix = "add the flag"
env = { XLA_FLAGS = "--xla_gpu_force_compilation_parallelism=1" }
[rules.when]
jax = ""
"""


def bdv2(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bdv2.cli", *args], capture_output=True, text=True, timeout=600,
                          check=False)


def pip(venv: Path, *args: str) -> str:
    res = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args], capture_output=True, text=True,
                         timeout=600, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def state(venv: Path) -> tuple[str, dict[str, bytes]]:
    files = {str(p.relative_to(venv)): p.read_bytes() for d in ("bin", "etc") for p in sorted((venv / d).rglob("*"))
             if p.is_file() and not p.is_symlink()}
    return pip(venv, "freeze", "--all"), files


@pytest.fixture(scope="module")
def broken_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("fix") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip(venv, "install", "-q", "jax==0.10.2")
    pip(venv, "install", "-q", "--no-deps", "jaxlib==0.9.2")
    return venv


def test_fix_then_undo_leaves_the_venv_exactly_as_it_was(broken_venv: Path, tmp_path: Path) -> None:
    venv = broken_venv
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(default_matrix_path().read_text() + ENV_RULE)
    before = state(venv)

    check = bdv2("doctor", "--python", str(venv), "--matrix", str(matrix), "--json")
    assert check.returncode == 1, check.stdout
    ids = {f["id"] for f in json.loads(check.stdout)["findings"]}
    assert {"jax-jaxlib-lockstep", "test-env-edit"} <= ids

    dry = bdv2("doctor", "--python", str(venv), "--matrix", str(matrix), "--fix", "--dry-run", "--json")
    plan = json.loads(dry.stdout)["plan"]
    assert plan["env_ops"] == [{"op": "set", "name": "XLA_FLAGS",
                                "value": "--xla_gpu_force_compilation_parallelism=1"}]
    assert any('"jaxlib==0.10.2"' in cmd for cmd in plan["pip"])
    assert state(venv) == before  # --dry-run changes nothing

    fixed = bdv2("doctor", "--python", str(venv), "--matrix", str(matrix), "--fix", "--yes")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "now healthy: jax-jaxlib-lockstep" in fixed.stdout
    assert (venv / "bin" / "activate").read_text().count(BEGIN) == 1
    assert "jaxlib==0.10.2" in pip(venv, "freeze", "--all")
    assert bdv2("doctor", "--python", str(venv)).returncode == 0
    activated = subprocess.run(["sh", "-c", f". {venv}/bin/activate && printf %s \"$XLA_FLAGS\""],
                               capture_output=True, text=True, check=True)
    assert activated.stdout == "--xla_gpu_force_compilation_parallelism=1"

    after_fix = state(venv)
    again = bdv2("doctor", "--python", str(venv), "--matrix", str(matrix), "--fix", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert state(venv) == after_fix  # idempotent

    undone = bdv2("doctor", "--python", str(venv), "--undo")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert state(venv) == before
    assert not (venv / ".bdv2").exists()
    assert "nothing to undo" in bdv2("doctor", "--python", str(venv), "--undo").stdout


def test_a_move_from_the_findings_own_fixes_is_undone_too(tmp_path: Path) -> None:
    """No known-good row fits: the plan installs the finding's own fix (checked by the resolver with the
    rest held), and --undo puts the packages back."""
    from .test_broken_envs import clone, rowless_matrix
    from .test_broken_envs import venv as scenario

    env = clone(scenario("tensorstore-old-ml-dtypes").parent.parent, tmp_path / "env").parent.parent
    matrix = str(rowless_matrix(tmp_path / "matrix.toml"))
    before = state(env)
    dry = bdv2("doctor", "--python", str(env), "--matrix", matrix, "--fix", "--dry-run", "--json")
    plan = json.loads(dry.stdout)["plan"]
    assert plan["row"] == "own-fixes" and plan["own_fixes"] == ["tensorstore-ml-dtypes-float8"], plan
    assert plan["pip"] == ['python -m pip install "ml-dtypes>=0.5.0"'] and "numpy==" in plan["constraints"]
    fixed = bdv2("doctor", "--python", str(env), "--matrix", matrix, "--fix", "--yes")
    assert fixed.returncode == 0 and "now healthy: tensorstore-ml-dtypes-float8" in fixed.stdout, fixed.stdout
    undone = bdv2("doctor", "--python", str(env), "--undo")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert state(env) == before
