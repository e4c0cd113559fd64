"""An environment without jax, flax or TensorFlow is examined as a user meets it: `bdv2 doctor --python` on a
real venv with numpy alone says what it examined and which stacks are missing with the install line, never
"healthy"; `--need train` makes that exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bdv2.cli import main


@pytest.fixture(scope="module")
def numpy_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("numpy_only") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "numpy"], check=True, timeout=300)
    return venv / "bin" / "python"


def test_numpy_only_is_not_called_healthy(numpy_only: Path) -> None:
    res = CliRunner().invoke(main, ["doctor", "--python", str(numpy_only)])
    assert res.exit_code == 0, res.output  # nothing wrong in what is installed ...
    assert "healthy" not in res.output  # ... but it cannot train, and says so
    assert "no problems in what is installed, but it cannot train" in res.output
    assert "examined: python packages, environment variables" in res.output
    assert ('no training stack (bdv2 train, eval, demo): jax, jaxlib, flax, optax' in res.output
            and 'not installed; `pip install "bdv2[train]"`, or a row of the matrix' in res.output), res.output
    assert 'no data stack (bdv2 data): tensorflow-cpu, pillow not installed; `pip install "bdv2[data]"`' in res.output


def test_need_train_makes_it_exit_1(numpy_only: Path) -> None:
    assert CliRunner().invoke(main, ["doctor", "--python", str(numpy_only), "--need", "train"]).exit_code == 1
    assert CliRunner().invoke(main, ["doctor", "--python", str(numpy_only), "--need", "bogus"]).exit_code == 2


def test_the_training_environment_is_healthy_and_needs_nothing() -> None:
    res = CliRunner().invoke(main, ["doctor", "--need", "train", "--need", "data"])
    assert res.exit_code == 0 and "healthy:" in res.output and "no training stack" not in res.output, res.output


def test_json_lists_the_missing_stacks_and_validates(numpy_only: Path) -> None:
    import json

    import jsonschema

    res = CliRunner().invoke(main, ["doctor", "--python", str(numpy_only), "--json"])
    doc = json.loads(res.stdout)
    schema = json.loads((Path(__file__).parents[2] / "doctor" / "report_schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert set(doc["missing_stacks"]) == {"data", "train"} and "jax" in doc["missing_stacks"]["train"]
    assert doc["exit_code"] == res.exit_code == 0
    needed = CliRunner().invoke(main, ["doctor", "--python", str(numpy_only), "--json", "--need", "train"])
    assert needed.exit_code == json.loads(needed.stdout)["exit_code"] == 1, "the JSON says what the process exits"
