"""`bdv2 matrix`: constraints, the generated CI workflow, and verify on a deliberately broken row."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from bdv2.cli import main
from bdv2.doctor.matrix import Matrix
from bdv2.doctor.matrix.verify import constraints, cpu_verifiable, static_check, verify_row, workflow_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_workflow_file_is_generated_from_the_matrix(matrix: Matrix) -> None:
    committed = (ROOT / ".github" / "workflows" / "matrix.yml").read_text()
    assert committed == workflow_yaml(matrix), "regenerate: bdv2 matrix workflow > .github/workflows/matrix.yml"
    assert "python -m build --wheel --outdir dist" in committed and "pip install dist/bdv2-*.whl" in committed
    assert "pip install .\n" not in committed  # the wheel is verified, not the checkout
    assert [r.name for r in cpu_verifiable(matrix)] == ["cpu-current", "cpu-stable-tfp", "cpu-legacy-2024",
                                                        "cpu-tf217-tfp024", "seed-era-cpu", "seed-era-min-cpu"]


def test_constraints_pin_every_package_of_the_row(matrix: Matrix) -> None:
    text = constraints(matrix.row("seed-era-cpu"))
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert "jax==0.4.19" in lines and "tensorflow-probability==0.22.1" in lines and "scipy<1.13,>=1.10" in lines
    assert len(lines) == len(matrix.row("seed-era-cpu").packages)


def test_cli_list_show_constraints() -> None:
    r = CliRunner()
    out = r.invoke(main, ["matrix", "list"]).output
    assert "cpu-current" in out and "seed-era-cuda12" in out and "documented" in out
    out = r.invoke(main, ["matrix", "show", "cpu-stable-tfp"]).output
    assert "known warnings: distrax-bijector-inversion-jax-06" in out and "jax==0.6.2" in out
    res = r.invoke(main, ["matrix", "constraints", "nope"])
    assert res.exit_code == 2 and "no row 'nope'" in res.output
    assert r.invoke(main, ["matrix", "verify"]).exit_code == 2


def test_list_in_a_pipe_never_cuts_a_row_name(matrix: Matrix) -> None:
    """`bdv2 matrix list | less` (stdout not a terminal): every row's full name, each on one line."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "bdv2.cli", "matrix", "list"], capture_output=True, text=True,
                         check=True, env={**__import__("os").environ, "COLUMNS": "80"}).stdout
    assert "…" not in out
    for row in matrix.rows:
        assert sum(row.name in line.split() for line in out.splitlines()) == 1, (row.name, out)


def test_every_shipped_row_passes_the_static_check(matrix: Matrix) -> None:
    for row in matrix.rows:
        assert static_check(row, matrix).status == "pass", row.name


def test_gpu_rows_are_not_installed_without_gpu(matrix: Matrix, tmp_path: Path) -> None:
    v = verify_row(matrix.row("cuda13-current"), matrix, tmp_path, log=lambda s: None)
    assert v.ok and "needs a GPU (--gpu)" in v.line()
    assert not any(tmp_path.iterdir())


BROKEN_ROW = '''
[[rows]]
name = "broken-scipy"
title = "jax 0.4.13 with SciPy 1.13 (deliberately broken)"
kind = "cpu"
python = ">=3.11,<3.12"
verified = "documented"
verified_note = "a test row"
reason = "tests that verify fails"
source = "https://github.com/jax-ml/jax/issues/20965"
[rows.packages]
jax = "==0.4.13"
jaxlib = "==0.4.13"
scipy = "==1.13.1"
numpy = "==1.26.4"
ml-dtypes = "==0.3.2"
'''


@pytest.mark.slow
def test_verify_fails_clearly_on_a_broken_row(tmp_path: Path) -> None:
    text = (ROOT / "compat_matrix.toml").read_text()
    i = text.index("# ============================================================================================\n"
                   "# Rules: built-in checks")
    path = tmp_path / "m.toml"
    path.write_text(text[:i] + BROKEN_ROW + "\n" + text[i:])
    assert "broken-scipy" in {r["name"] for r in tomllib.loads(path.read_text())["rows"]}
    res = CliRunner().invoke(main, ["matrix", "--matrix", str(path), "verify", "broken-scipy", "--workdir",
                                    str(tmp_path / "work")])
    if "Could not find a version" in res.output or "No matching distribution" in res.output:
        pytest.skip("package index unreachable")
    assert res.exit_code == 1, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("broken-scipy:"))
    assert "FAIL" in line and "static rules FAILED" in line and "scipy" in line
    assert "doctor --strict FAILED: jax-scipy-113" in line
    assert "probes failed: jax" in line
